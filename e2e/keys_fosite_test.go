//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/interop"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
)

// TestPrivateKeyJWTByJWKSWithFosite: fosite, an OAuth server bankauth did
// not write, knows the client only by the jwks_uri Vault serves without a
// token. A key generated in Vault signs the private_key_jwt assertion;
// after a rotation fosite finds the new kid by fetching the set again,
// which still publishes the old version for banks that cached it.
func TestPrivateKeyJWTByJWKSWithFosite(t *testing.T) {
	t.Parallel()
	ca, err := testpki.NewCA("fosite server CA")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ca.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	as, err := interop.Start(tlsCfg, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	mount := fmt.Sprintf("bankauth-%d", mountSeq.Add(1))
	if err := vault.Mount("bankauth", mount); err != nil {
		t.Fatal(err)
	}
	v1 := cliJSON(t, "write", mount+"/key/client-sig", "type=rsa-2048", "public_jwks=true",
		"purpose=client_auth", "allowed_endpoints="+as.URL+"/oauth2/", "allowed_audiences="+as.TokenURL)
	if err := as.Register(interop.Client{ID: "tpp-e2e", AuthMethod: "private_key_jwt", SigningAlg: "PS256",
		JWKSURI: vault.Addr + "/v1/" + mount + "/jwks/client-sig", Scopes: []string{"accounts"}}); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.MustCLI("write", mount+"/config/fosite", "provider=oauth2", "token_url="+as.TokenURL,
		"client_id=tpp-e2e", "auth_method=private_key_jwt", "signing_key=client-sig", "scope=accounts",
		"ca_cert=@"+caFile); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		tok := cliJSON(t, "write", "-f", mount+"/token/fosite")
		at, _ := tok["access_token"].(string)
		seen.add(at)
		if id, ok := as.Valid(context.Background(), at); !ok || id != "tpp-e2e" {
			t.Fatalf("%s: fosite does not know the token (client %q)", when, id)
		}
	}
	check("version 1")
	if _, err := vault.MustCLI("write", "-f", mount+"/key/client-sig/rotate"); err != nil {
		t.Fatal(err)
	}
	v2 := cliJSON(t, "read", mount+"/key/client-sig")
	if v2["kid"] == v1["kid"] {
		t.Fatal("rotation kept the kid")
	}
	check("version 2, after rotation")
	code, set := fetchJWKS(t, mount, "client-sig")
	if code != http.StatusOK || len(set.Keys) != 2 || set.Keys[1].KeyID != v1["kid"] {
		t.Errorf("during the overlap the JWKS holds %d keys", len(set.Keys))
	}
	if as.Issued() != 2 {
		t.Errorf("fosite issued %d tokens", as.Issued())
	}
	// The key cannot be deleted while the config uses it.
	if r := vault.CLI("", "delete", mount+"/key/client-sig"); r.ExitCode == 0 {
		t.Error("a key in use was deleted")
	}
}
