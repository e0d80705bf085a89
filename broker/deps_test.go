package broker

import (
	"os/exec"
	"strings"
	"testing"
)

// The lifecycle, the bank protocols and the FAPI 2.0 client stay
// Vault-free: none of these packages may depend on any
// github.com/hashicorp/vault module.
func TestNoVaultImport(t *testing.T) {
	for _, pkg := range []string{".", "../bank", "../fapi"} {
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
