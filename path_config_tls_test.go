package bankauth

import (
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestConfigClientCertificate(t *testing.T) {
	e := newTestEnv(t)
	ca, err := testpki.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := ca.Client("partner", 0)
	other, _ := ca.Client("other", 0)
	e.configure(t, "rak", emulator.Rakbank)
	before := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data
	if before["tls_client_key_set"] != false {
		t.Errorf("tls_client_key_set %v before any key", before["tls_client_key_set"])
	}

	for _, tc := range []struct {
		data  map[string]any
		field string
	}{
		{map[string]any{"tls_client_cert": string(leaf.CertPEM)}, "invalid tls_client_key: is required"},
		{map[string]any{"tls_client_key": string(leaf.KeyPEM)}, "invalid tls_client_cert: is required"},
		{map[string]any{"tls_client_cert": "nope", "tls_client_key": string(leaf.KeyPEM)}, "invalid tls_client_cert"},
		{map[string]any{"tls_client_cert": string(leaf.CertPEM), "tls_client_key": string(other.KeyPEM)}, "invalid tls_client_key: does not match"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "config/rak", tc.data)
		if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), tc.field) {
			t.Errorf("write %v: got %v %v, want a 400 with %q", keys(tc.data), resp, err, tc.field)
		}
		if resp != nil && resp.IsError() && strings.Contains(resp.Error().Error(), "PRIVATE KEY") {
			t.Errorf("400 quotes the key")
		}
	}
	if after := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data; stringify(after) != stringify(before) {
		t.Fatalf("rejected writes changed the config")
	}

	// A new client certificate changes how the secrets are sent: they
	// come along (config_resend.go).
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{
		"tls_client_cert": string(leaf.CertPEM), "tls_client_key": string(leaf.KeyPEM),
		"client_secret": emulator.DefaultCredentials().ClientSecret})
	got := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data
	if got["tls_client_key_set"] != true || got["tls_client_cert"] != strings.TrimSpace(string(leaf.CertPEM)) {
		t.Errorf("read after setting the pair: %v", got)
	}
	if strings.Contains(stringify(got), "PRIVATE KEY") {
		t.Fatal("config read shows the private key")
	}
	// The pair is common to all providers: a provider change keeps it.
	data := emulator.ConfigData(emulator.Etranzact, e.url, emulator.DefaultCredentials())
	e.mustOK(t, logical.UpdateOperation, "config/rak", data)
	if got := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data; got["tls_client_key_set"] != true || got["provider"] != "etranzact" {
		t.Errorf("provider change dropped the client certificate: %v", got)
	}
	// Unsetting both removes it.
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"tls_client_cert": "", "tls_client_key": "",
		"password": emulator.DefaultCredentials().Password})
	if got := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data; got["tls_client_key_set"] != false || got["tls_client_cert"] != nil {
		t.Errorf("unset left %v", got)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
