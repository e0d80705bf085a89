//go:build e2e

package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
)

// TestMutualTLSThroughVault configures a client certificate with the vault
// CLI (the way operators will, from files) and reads a token from a bank
// that refuses connections without it.
func TestMutualTLSThroughVault(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	serverCA, err := testpki.NewCA("bank server CA")
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := testpki.NewCA("bank client CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := clientCA.Client("partner-e2e", 2048)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := serverCA.ServerTLS(clientCA)
	if err != nil {
		t.Fatal(err)
	}
	var subject atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		b.emu.ServeHTTP(w, r)
	}))
	srv.TLS = tlsCfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	files := map[string][]byte{"ca.pem": serverCA.CertPEM, "client.pem": leaf.CertPEM, "client-key.pem": leaf.KeyPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b.url = srv.URL
	b.configure(t, "rak", emulator.Rakbank, "ca_cert=@"+filepath.Join(dir, "ca.pem"))

	// Without the client certificate the bank's TLS handshake fails: a 502.
	r := b.srv.CLI("", "read", b.mount+"/token/rak")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "rakbank token request failed") {
		t.Fatalf("read without a client certificate: exit %d %s", r.ExitCode, r.Stderr)
	}
	// A key that does not belong to the certificate is a 400 naming the field.
	other, _ := clientCA.Client("other", 0)
	otherKey := filepath.Join(dir, "other-key.pem")
	os.WriteFile(otherKey, other.KeyPEM, 0o600)
	r = b.srv.CLI("", "write", b.mount+"/config/rak", "tls_client_cert=@"+filepath.Join(dir, "client.pem"), "tls_client_key=@"+otherKey)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "invalid tls_client_key: does not match tls_client_cert") {
		t.Fatalf("mismatched key: exit %d %s", r.ExitCode, r.Stderr)
	}

	// A new client certificate changes how the secrets are sent: the write
	// carries them again (docs/security.md).
	if _, err := b.srv.MustCLI("write", b.mount+"/config/rak",
		"tls_client_cert=@"+filepath.Join(dir, "client.pem"), "tls_client_key=@"+filepath.Join(dir, "client-key.pem"),
		"client_secret="+emulator.DefaultCredentials().ClientSecret); err != nil {
		t.Fatal(err)
	}
	tok := b.readToken(t, "rak")["access_token"].(string)
	if !b.emu.TokenValid(emulator.Rakbank, tok) || subject.Load() != "partner-e2e" {
		t.Fatalf("token valid %t, bank saw client certificate %v", b.emu.TokenValid(emulator.Rakbank, tok), subject.Load())
	}
	out, err := b.srv.MustCLI("read", "-format=json", b.mount+"/config/rak")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "PRIVATE KEY") || !strings.Contains(out, `"tls_client_key_set": true`) || !strings.Contains(out, "BEGIN CERTIFICATE") {
		t.Fatalf("config read: %s", out)
	}
	if strings.Contains(b.srv.Log(), "PRIVATE KEY") {
		t.Error("Vault's log shows a private key")
	}
}
