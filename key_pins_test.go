package bankauth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// assertionHost is a token endpoint that counts the client assertions it
// is sent and answers each request with a token.
type assertionHost struct {
	*httptest.Server
	assertions atomic.Int64
}

func newAssertionHost(t *testing.T) *assertionHost {
	h := &assertionHost{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("client_assertion") != "" {
			h.assertions.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":3600}`, h.assertions.Load())
	}))
	t.Cleanup(h.Close)
	return h
}

// pinnedKeySetup makes key sig (client_auth, pinned to bank) and config ob
// using it.
func pinnedKeySetup(t *testing.T, e *testEnv, bank string) {
	t.Helper()
	e.mustOK(t, logical.CreateOperation, "key/sig", map[string]any{"type": "ec-p256", "purpose": "client_auth",
		"allowed_endpoints": bank + "/", "allowed_audiences": bank})
	e.mustOK(t, logical.CreateOperation, "config/ob", map[string]any{"provider": "oauth2", "token_url": bank + "/token",
		"client_id": "tpp", "auth_method": "private_key_jwt", "signing_key": "sig", "assertion_audience": bank})
}

// TestConfigWriterCannotRedirectKeptKeyAssertions is issue 18's finding
// 1: a config that names a kept key stores no secret, so the resend rule
// asked for nothing when its token_url or assertion_audience moved, and
// the next fetch sent a fresh assertion, replayable at the real bank, to
// the new host. Now every write that would send the key's assertions
// outside its allowed_endpoints and allowed_audiences is refused naming
// the key, and nothing reaches the other host.
func TestConfigWriterCannotRedirectKeptKeyAssertions(t *testing.T) {
	e := newTestEnv(t)
	bank, evil := newAssertionHost(t), newAssertionHost(t)
	pinnedKeySetup(t, e, bank.URL)
	e.mustOK(t, logical.UpdateOperation, "token/ob", nil)
	e.mustOK(t, logical.CreateOperation, "profile/pbank", map[string]any{"profile": `{
	  "fields": [{"name": "client_id", "required": true}, {"name": "private_key", "secret": true}],
	  "steps": [{"name": "token", "method": "POST", "path": "/oauth/token",
	    "client_assertion": {"client_id": "{{field.client_id}}", "private_key": "{{field.private_key}}"},
	    "body": {"type": "form", "fields": {"grant_type": "client_credentials"}}}]}`})
	oauth2 := func(tokenURL string, extra map[string]any) map[string]any {
		d := map[string]any{"provider": "oauth2", "token_url": tokenURL, "client_id": "other", "auth_method": "private_key_jwt", "signing_key": "sig"}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	for _, c := range []struct {
		why, path, want string
		data            map[string]any
	}{
		{"token_url", "config/ob", "allowed_endpoints", map[string]any{"token_url": evil.URL + "/token"}},
		{"token_url, the same port under another host name", "config/ob", "allowed_endpoints", map[string]any{"token_url": strings.Replace(bank.URL, "127.0.0.1", "localhost", 1) + "/token"}},
		{"assertion_audience", "config/ob", "allowed_audiences", map[string]any{"assertion_audience": evil.URL}},
		{"default audience", "config/ob", "allowed_audiences", map[string]any{"assertion_audience": ""}},
		{"new config, other host", "config/evil", "allowed_endpoints", oauth2(evil.URL+"/token", nil)},
		{"new config, other audience", "config/evil", "allowed_audiences", oauth2(bank.URL+"/token", map[string]any{"assertion_audience": evil.URL})},
		{"profile base_url", "config/evil", "allowed_endpoints", map[string]any{"provider": "pbank", "base_url": evil.URL, "client_id": "x", "signing_key": "sig"}},
	} {
		resp, err := e.request(t, logical.UpdateOperation, c.path, c.data)
		msg := errorText(resp, err)
		if !strings.HasPrefix(msg, `invalid signing_key: key "sig" `) || !strings.Contains(msg, c.want) || strings.Contains(msg, evil.URL) {
			t.Errorf("%s: %q", c.why, msg)
		}
	}
	for _, n := range []string{"ob", "evil"} {
		_, _ = e.request(t, logical.UpdateOperation, "token/"+n, nil)
	}
	if n := evil.assertions.Load(); n != 0 {
		t.Errorf("the other host received %d client assertions", n)
	}
	if n := bank.assertions.Load(); n != 2 {
		t.Errorf("the bank received %d client assertions, want 2", n)
	}
	// Within the pins a config may still change: another path under the
	// allowed endpoint, another client id; a profile whose assertion
	// audience (its step's URL) the key's owner added.
	e.mustOK(t, logical.UpdateOperation, "config/ob", map[string]any{"token_url": bank.URL + "/v2/token", "client_id": "tpp2"})
	e.mustOK(t, logical.UpdateOperation, "key/sig", map[string]any{"allowed_audiences": []any{bank.URL, bank.URL + "/oauth/token"}})
	e.mustOK(t, logical.CreateOperation, "config/p", map[string]any{"provider": "pbank", "base_url": bank.URL, "client_id": "x",
		"signing_key": "sig"})
}

// A key's pins must be set before a config may use it for signing_key,
// and narrowing them later makes the next fetch fail naming the key (the
// key write is allowed and warns about the configs it strands).
func TestPinsRequiredAndNarrowingFailsTheFetch(t *testing.T) {
	e := newTestEnv(t)
	bank := newAssertionHost(t)
	e.mustOK(t, logical.CreateOperation, "key/bare", map[string]any{"type": "ec-p256", "purpose": "client_auth"})
	for _, c := range []struct {
		field string
		data  map[string]any
	}{
		{"allowed_endpoints", map[string]any{}},
		{"allowed_audiences", map[string]any{"allowed_endpoints": bank.URL + "/"}},
	} { // in this order: the second write adds what the first case lacks
		field, data := c.field, c.data
		e.mustOK(t, logical.UpdateOperation, "key/bare", data)
		resp, err := e.request(t, logical.CreateOperation, "config/c", map[string]any{"provider": "oauth2", "token_url": bank.URL + "/token",
			"client_id": "tpp", "auth_method": "private_key_jwt", "signing_key": "bare"})
		if msg := errorText(resp, err); !strings.HasPrefix(msg, `invalid signing_key: key "bare" has no `+field) {
			t.Errorf("without %s: %q", field, msg)
		}
	}

	pinnedKeySetup(t, e, bank.URL)
	e.mustOK(t, logical.ReadOperation, "token/ob", nil)
	resp := e.mustOK(t, logical.UpdateOperation, "key/sig", map[string]any{"allowed_endpoints": "https://as2.bank.example/"})
	if w := strings.Join(resp.Warnings, " "); !strings.Contains(w, "ob") {
		t.Errorf("no warning about the stranded config: %q", w)
	}
	resp, err := e.request(t, logical.UpdateOperation, "token/ob", nil)
	if msg := errorText(resp, err); !strings.Contains(msg, `key "sig"`) || !strings.Contains(msg, "allowed_endpoints") {
		t.Errorf("a fetch after the pins narrowed: %q", msg)
	}
	st := e.mustOK(t, logical.ReadOperation, "status/ob", nil).Data["keys"].(map[string]any)["signing_key"].(map[string]any)
	if msg, _ := st["error"].(string); !strings.HasPrefix(msg, `key "sig" does not allow`) {
		t.Errorf("status keys.signing_key %v", st)
	}
	if n := bank.assertions.Load(); n != 1 {
		t.Errorf("the bank received %d assertions", n)
	}
}
