package interop_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The plugin binary must not link the test-only authorization server or
// its dependencies.
func TestPluginDoesNotLinkFosite(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/vault-plugin-secrets-bankauth").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/ory/") || strings.HasPrefix(pkg, "github.com/cristalhq/") ||
			strings.HasSuffix(pkg, "/internal/interop") {
			t.Errorf("the plugin binary links %s", pkg)
		}
	}
	if !strings.Contains(string(out), "github.com/go-jose/go-jose/v4/jwt") {
		t.Error("go list output does not look like the plugin's dependencies")
	}
}
