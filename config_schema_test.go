package bankauth

import (
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
)

// TestConfigNonStringValueIs400WithoutEchoingIt: through the API a field can
// arrive as a JSON list or object; the answer names the field and never
// quotes the value, which may be a secret, and nothing is stored.
func TestConfigNonStringValueIs400WithoutEchoingIt(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	before := stringify(e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data)
	const secret = "list-held-secret-0042"
	for _, tc := range []struct {
		data  map[string]any
		field string
	}{
		{map[string]any{"client_secret": []any{secret}}, "client_secret"},
		{map[string]any{"client_secret": map[string]any{"k": secret}}, "client_secret"},
		{map[string]any{"scope": []any{"a", secret}}, "scope"},
		{map[string]any{"": "x"}, `field ""`},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "config/rak", tc.data)
		if err != nil || !resp.IsError() {
			t.Fatalf("%v: err=%v resp=%v, want a 400", tc.data, err, resp)
		}
		msg := resp.Error().Error()
		if !strings.Contains(msg, "invalid "+tc.field) || strings.Contains(msg, secret) {
			t.Errorf("%v: message %q, want one naming %s without the value", tc.data, msg, tc.field)
		}
	}
	if after := stringify(e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data); after != before {
		t.Errorf("refused writes changed the config: %s -> %s", before, after)
	}
	// Numbers and booleans are still taken as their text, as the framework does.
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"client_id": 12345})
	if got := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data["client_id"]; got != "12345" {
		t.Errorf("client_id %v, want \"12345\"", got)
	}
}
