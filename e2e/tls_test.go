//go:build e2e

package e2e

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// startTLSEmulator serves b's emulator over https with a self-signed
// certificate and returns its URL and the certificate's PEM file.
func startTLSEmulator(t *testing.T, b *bankMount) (string, string) {
	t.Helper()
	cfg, pem, err := emulator.SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(b.emu)
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "bank-ca.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, path
}
