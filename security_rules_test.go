package bankauth

import (
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
	"github.com/hashicorp/vault/sdk/logical"
)

// An RSA mTLS client key under 2048 bits is refused on write, naming the
// field; 2048 is accepted. (The old code accepted 1024.)
func TestShortRSAClientKeyIsRefused(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	ca, err := testpki.NewCA("clients")
	if err != nil {
		t.Fatal(err)
	}
	small, _ := ca.Client("small", 1024)
	good, _ := ca.Client("good", 2048)
	secret := emulator.DefaultCredentials().ClientSecret
	resp, err := e.request(t, logical.UpdateOperation, "config/rak", map[string]any{
		"tls_client_cert": string(small.CertPEM), "tls_client_key": string(small.KeyPEM), "client_secret": secret})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "invalid tls_client_key: RSA key has 1024 bits, at least 2048") {
		t.Fatalf("1024-bit key: %v %v", resp, err)
	}
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{
		"tls_client_cert": string(good.CertPEM), "tls_client_key": string(good.KeyPEM), "client_secret": secret})
}

// A budget that can never fit one token is a 400 naming the field.
func TestImpossibleBudgetIsRefused(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "isb", emulator.Isbank)
	resp, err := e.request(t, logical.UpdateOperation, "config/isb", map[string]any{"max_requests_per_minute": 1})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "invalid max_requests_per_minute") {
		t.Fatalf("isbank 1/minute: %v %v", resp, err)
	}
}

// Profiles are stored seal-wrapped like configs and tokens.
func TestProfilesAreSealWrapped(t *testing.T) {
	e := newTestEnv(t)
	got := strings.Join(e.b.SpecialPaths().SealWrapStorage, ",")
	for _, want := range []string{configPrefix, tokenPrefix, profilePrefix, consentPrefix} {
		if !strings.Contains(","+got+",", ","+want+",") {
			t.Errorf("SealWrapStorage %q lacks %q", got, want)
		}
	}
}
