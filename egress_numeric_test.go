package bankauth

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// Numeric spellings of loopback and link-local addresses are refused when
// a config is written, naming the field and the rule, never the host
// (issue 18: a proxy's resolver mapped them to 127.0.0.1 and
// 169.254.169.254).
func TestConfigWriteRefusesNumericHosts(t *testing.T) {
	e := newTestEnv(t)
	for _, h := range []string{"2130706433", "0177.0.0.1", "127.1", "0x7f.1", "169.254.43518"} {
		for field, data := range map[string]map[string]any{
			"base_url": {"provider": "etranzact", "base_url": "https://" + h, "username": "u", "password": "p"},
			"token_url": {"provider": "oauth2", "token_url": "https://" + h + "/token", "client_id": "c",
				"client_secret": "s"},
		} {
			resp, err := e.request(t, logical.CreateOperation, "config/numeric", data)
			if err != nil || !resp.IsError() {
				t.Fatalf("%s=%s: accepted (%v %v)", field, h, resp, err)
			}
			msg := resp.Error().Error()
			if !strings.HasPrefix(msg, "invalid "+field+": ") || strings.Contains(msg, h) || !strings.Contains(msg, "IPv4") {
				t.Errorf("%s=%s: %q, want invalid %s naming the rule, not the host", field, h, msg, field)
			}
		}
	}
	if resp, err := e.request(t, logical.ReadOperation, "config/numeric", nil); !isNotFound(resp, err) {
		t.Fatal("a refused config was stored")
	}
}
