//go:build e2e

package e2e

import (
	"context"
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/interop"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
)

// TestOAuth2AgainstFositeThroughVault configures the generic oauth2
// provider with the vault CLI, once per client authentication method, and
// reads tokens that an independent authorization server (ory/fosite, see
// internal/interop) issued and recognises.
func TestOAuth2AgainstFositeThroughVault(t *testing.T) {
	t.Parallel()
	serverCA, err := testpki.NewCA("AS server CA")
	if err != nil {
		t.Fatal(err)
	}
	clientCA, _ := testpki.NewCA("AS client CA")
	tlsCfg, err := serverCA.ServerTLS(clientCA)
	if err != nil {
		t.Fatal(err)
	}
	as, err := interop.Start(tlsCfg, serverCA.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	leaf, _ := clientCA.Client("bankauth-e2e", 2048)
	signer, _ := clientCA.Client("signer", 2048)
	signerKey, _ := bank.ParsePrivateKeyPEM(string(signer.KeyPEM))

	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return "@" + p
	}
	ca, cert, key, sigKey := file("ca.pem", serverCA.CertPEM), file("client.pem", leaf.CertPEM), file("client-key.pem", leaf.KeyPEM), file("signer.pem", signer.KeyPEM)
	const secret = "e2e+secret/with=odd chars"
	clients := []struct {
		client interop.Client
		args   []string
	}{
		{interop.Client{ID: "basic", Secret: secret, AuthMethod: "client_secret_basic"}, []string{"client_secret=" + secret}},
		{interop.Client{ID: "post", Secret: secret, AuthMethod: "client_secret_post"}, []string{"auth_method=client_secret_post", "client_secret=" + secret}},
		{interop.Client{ID: "jwt", AuthMethod: "private_key_jwt", SigningAlg: "PS256", KeyID: "k1", PublicKey: signerKey.(crypto.Signer).Public()},
			[]string{"auth_method=private_key_jwt", "private_key=" + sigKey, "signing_alg=PS256", "key_id=k1"}},
		{interop.Client{ID: "mtls", AuthMethod: "tls_client_auth", SubjectDN: leaf.Cert.Subject.String()},
			[]string{"auth_method=tls_client_auth", "tls_client_cert=" + cert, "tls_client_key=" + key}},
	}
	b := newBank(t, nil)
	for _, c := range clients {
		c.client.Scopes = []string{"accounts"}
		if err := as.Register(c.client); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"write", b.mount + "/config/" + c.client.ID, "provider=oauth2", "token_url=" + as.TokenURL,
			"client_id=" + c.client.ID, "scope=accounts", "ca_cert=" + ca}, c.args...)
		if _, err := b.srv.MustCLI(args...); err != nil {
			t.Fatal(err)
		}
		data := b.readToken(t, c.client.ID)
		tok, _ := data["access_token"].(string)
		if id, ok := as.Valid(context.Background(), tok); !ok || id != c.client.ID {
			t.Errorf("%s: fosite does not recognise the token (client %q)", c.client.AuthMethod, id)
		}
		if data["scope"] != "accounts" {
			t.Errorf("%s: scope %v", c.client.AuthMethod, data["scope"])
		}
	}
	if n := as.Issued(); n != len(clients) {
		t.Errorf("fosite issued %d tokens for %d configs read once each", n, len(clients))
	}
	if log := b.srv.Log(); strings.Contains(log, "PRIVATE KEY") || strings.Contains(log, secret) {
		t.Error("Vault's log shows a private key or the client secret")
	}
}
