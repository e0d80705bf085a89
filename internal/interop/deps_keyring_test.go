package interop_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The keyring's tests verify HTTP message signatures with a structured
// field parser of their own choosing; the plugin binary must not link it.
func TestPluginDoesNotLinkTestOnlyParsers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/vault-plugin-secrets-bankauth").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, pkg := range deps {
		if strings.HasPrefix(pkg, "github.com/dunglas/") {
			t.Errorf("the plugin binary links %s", pkg)
		}
	}
	if !strings.Contains(string(out), "crypto/x509") {
		t.Error("go list output does not look like the plugin's dependencies")
	}
}
