package bankauth

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// Without fapi=2.0, a server that offers no PAR still gets consents: the
// authorization request rides in the URL (PKCE, state, nonce, dpop_jkt,
// prompt), and the flow ends in a DPoP-bound token as with PAR. With
// fapi=2.0 such a server is refused, naming the rule.
func TestConsentWithoutPARGoesThroughTheBrowser(t *testing.T) {
	e := newConsentEnvWith(t, 600, true)
	if got := e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data["par_url"]; got != nil && got != "" {
		t.Fatalf("par_url %v for a server without PAR", got)
	}
	resp := e.mustOK(t, logical.UpdateOperation, "consent/ob/alice", nil)
	u, err := url.Parse(resp.Data["authorization_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for _, p := range []string{"client_id", "response_type", "redirect_uri", "scope", "state", "nonce",
		"code_challenge", "code_challenge_method", "dpop_jkt", "prompt"} {
		if q.Get(p) == "" {
			t.Errorf("the authorization URL lacks %s", p)
		}
	}
	if q.Get("request_uri") != "" || q.Get("code_challenge_method") != "S256" || q.Get("prompt") != "consent" {
		t.Errorf("authorization URL query %v", q)
	}
	loc := userAgent(t, u.String(), nil)
	cb := e.mustOK(t, logical.UpdateOperation, "consent/ob/alice/callback", map[string]any{"callback_url": loc})
	if cb.Data["state"] != "authorized" {
		t.Fatalf("callback: %v", cb.Data)
	}
	tok := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil).Data
	if tok["token_type"] != "DPoP" || tok["access_token"] == "" {
		t.Fatalf("token %v", tok)
	}

	resp, err = e.request(t, logical.UpdateOperation, "config/ob", map[string]any{"fapi": "2.0"})
	if msg := errorText(resp, err); !strings.HasPrefix(msg, "invalid fapi: FAPI 2.0 rule par") {
		t.Errorf("fapi=2.0 on a server without PAR: %q", msg)
	}
}
