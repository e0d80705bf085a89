package interop_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The keyring's tests verify HTTP message signatures with a structured
// field parser and check keys with a test token endpoint; the plugin
// binary must link neither.
func TestPluginDoesNotLinkTestOnlyParsers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/vault-plugin-secrets-bankauth").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, pkg := range deps {
		if strings.HasPrefix(pkg, "github.com/dunglas/") || strings.HasSuffix(pkg, "/internal/httpsigverify") ||
			strings.HasSuffix(pkg, "/internal/keyas") {
			t.Errorf("the plugin binary links %s", pkg)
		}
	}
	if !strings.Contains(string(out), "crypto/x509") {
		t.Error("go list output does not look like the plugin's dependencies")
	}
}
