package broker

import (
	"os/exec"
	"strings"
	"testing"
)

// The lifecycle and the bank protocols stay Vault-free: neither package
// may depend on any github.com/hashicorp/vault module.
func TestNoVaultImport(t *testing.T) {
	for _, pkg := range []string{".", "../bank"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/hashicorp/vault") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
