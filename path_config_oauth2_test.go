package bankauth

import (
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestConfigOAuth2(t *testing.T) {
	e := newTestEnv(t)
	ca, _ := testpki.NewCA("keys")
	leaf, _ := ca.Client("signer", 2048)
	resp, err := e.request(t, logical.CreateOperation, "config/ob", map[string]any{
		"provider": "oauth2", "token_url": "https://as.bank.example/token", "client_id": "c1", "auth_method": "private_key_jwt"})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "invalid private_key: is required for auth_method private_key_jwt") {
		t.Fatalf("missing private_key: %v %v", resp, err)
	}
	e.mustOK(t, logical.CreateOperation, "config/ob", map[string]any{
		"provider": "oauth2", "token_url": "https://as.bank.example/token", "client_id": "c1", "auth_method": "private_key_jwt",
		"private_key": string(leaf.KeyPEM), "signing_alg": "PS256", "assertion_audience": "https://as.bank.example"})
	got := e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data
	if got["private_key_set"] != true || got["client_secret_set"] != false || got["signing_alg"] != "PS256" ||
		got["assertion_audience"] != "https://as.bank.example" || got["basic_encoding"] != "rfc6749" {
		t.Errorf("read %v", got)
	}
	if strings.Contains(stringify(got), "PRIVATE KEY") {
		t.Fatal("config read shows the private key")
	}
	resp, err = e.request(t, logical.UpdateOperation, "config/ob", map[string]any{"base_url": "https://as.bank.example"})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "invalid base_url") {
		t.Fatalf("base_url on oauth2: %v %v", resp, err)
	}
}
