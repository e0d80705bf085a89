package bankauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
)

// catcher is a host an operator who cannot read secrets would like the
// connection pointed at: it counts what reaches it.
func catcher(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, `{"error":"caught"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// A write that changes where or how the stored secrets go must carry them:
// else a 400 names them and nothing is stored. Before this rule, a write of
// base_url alone sent the stored password to the new host on the next read.
func TestEndpointChangeNeedsSecretsAgain(t *testing.T) {
	e := newTestEnv(t)
	evil, caught := catcher(t)
	creds := emulator.DefaultCredentials()
	_, caPEM, err := emulator.SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	testCA := string(caPEM)
	e.configure(t, "etz", emulator.Etranzact)
	e.configure(t, "isb", emulator.Isbank)
	before := stringify(e.mustOK(t, logical.ReadOperation, "config/etz", nil).Data)

	for _, tc := range []struct {
		name, path string
		data       map[string]any
		want       string
	}{
		{"base_url", "config/etz", map[string]any{"base_url": evil.URL}, "changing base_url would send the stored secrets to a new place or in a new way: resend password"},
		{"base_url, one of two secrets", "config/isb", map[string]any{"base_url": evil.URL, "client_secret": creds.ClientSecret}, "resend service_account_secret"},
		{"ca_cert", "config/etz", map[string]any{"ca_cert": testCA}, "changing ca_cert"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, tc.path, tc.data)
		if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), tc.want) {
			t.Errorf("%s: got %v %v, want a 400 with %q", tc.name, resp, err, tc.want)
		}
	}
	if after := stringify(e.mustOK(t, logical.ReadOperation, "config/etz", nil).Data); after != before {
		t.Fatalf("a refused write changed the config:\n%s\n%s", before, after)
	}
	e.mustOK(t, logical.UpdateOperation, "token/etz", nil)
	e.mustOK(t, logical.UpdateOperation, "token/isb", nil)
	if caught.Load() != 0 {
		t.Fatalf("the new host got %d requests", caught.Load())
	}

	// Changes that redirect nothing need no secret; a redirect that carries
	// them is an ordinary update.
	e.mustOK(t, logical.UpdateOperation, "config/etz", map[string]any{"timeout": 20, "username": creds.Username})
	e.mustOK(t, logical.UpdateOperation, "config/etz", map[string]any{"base_url": e.url + "/", "timeout": 25})
	e.mustOK(t, logical.UpdateOperation, "config/etz", map[string]any{"base_url": evil.URL, "password": creds.Password})
}

// oauth2's token_url and client authentication decide where and how its
// secret goes.
func TestOAuth2EndpointChangeNeedsSecretsAgain(t *testing.T) {
	e := newTestEnv(t)
	evil, _ := catcher(t)
	e.mustOK(t, logical.CreateOperation, "config/o", map[string]any{"provider": "oauth2",
		"token_url": e.url + "/oauth2/token", "client_id": "c", "client_secret": "s3cret-value"})
	for field, v := range map[string]string{"token_url": evil.URL + "/token", "auth_method": "client_secret_post", "basic_encoding": "raw"} {
		resp, err := e.request(t, logical.UpdateOperation, "config/o", map[string]any{field: v})
		if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "changing "+field+" would send") ||
			!strings.Contains(resp.Error().Error(), "resend client_secret") {
			t.Errorf("%s: got %v %v", field, resp, err)
		}
		e.mustOK(t, logical.UpdateOperation, "config/o", map[string]any{field: v, "client_secret": "s3cret-value"})
	}
	// Writing what already takes effect (a default, the same URL) redirects nothing.
	e.mustOK(t, logical.UpdateOperation, "config/o", map[string]any{"token_url": evil.URL + "/token", "auth_method": "client_secret_post", "basic_encoding": "raw"})
	e.mustOK(t, logical.CreateOperation, "config/o2", map[string]any{"provider": "oauth2",
		"token_url": e.url + "/oauth2/token", "client_id": "c", "client_secret": "s3cret-value"})
	e.mustOK(t, logical.UpdateOperation, "config/o2", map[string]any{"auth_method": "client_secret_basic", "basic_encoding": "rfc6749"})
}

// A profile rewrite that changes where its steps go is refused while
// configs use it: their secrets would follow.
func TestProfileRewriteCannotRedirectConfigs(t *testing.T) {
	e := newTestEnv(t)
	doc := interswitchProfile(t)
	e.mustOK(t, logical.CreateOperation, "profile/isw", map[string]any{"profile": doc})
	// Unused, a profile may change in any way.
	e.mustOK(t, logical.UpdateOperation, "profile/isw", map[string]any{"profile": strings.Replace(doc, "https://sandbox.interswitchng.com", "https://elsewhere.example", 1)})
	e.mustOK(t, logical.UpdateOperation, "profile/isw", map[string]any{"profile": doc})
	e.mustOK(t, logical.CreateOperation, "config/a", map[string]any{"provider": "isw", "client_id": "IKIA", "client_secret": "isw-secret-1"})

	for name, bad := range map[string]string{
		"default base_url": strings.Replace(doc, "https://sandbox.interswitchng.com", "https://elsewhere.example", 1),
		"step url":         strings.Replace(doc, `"path": "/passport/oauth/token"`, `"url": "https://elsewhere.example/token"`, 1),
	} {
		resp, err := e.request(t, logical.UpdateOperation, "profile/isw", map[string]any{"profile": bad})
		if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "changes where requests go") ||
			!strings.Contains(resp.Error().Error(), "(a)") {
			t.Errorf("%s: got %v %v", name, resp, err)
		}
	}
	// A config of the profile follows the resend rule like any other: its
	// profile-declared secret counts as resent.
	evil, _ := catcher(t)
	resp, err := e.request(t, logical.UpdateOperation, "config/a", map[string]any{"base_url": evil.URL})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "resend client_secret") {
		t.Errorf("profile config base_url alone: %v %v", resp, err)
	}
	e.mustOK(t, logical.UpdateOperation, "config/a", map[string]any{"base_url": evil.URL, "client_secret": "isw-secret-1"})

	// The same places: allowed.
	e.mustOK(t, logical.UpdateOperation, "profile/isw", map[string]any{"profile": strings.Replace(doc, `"Accept": "application/json"`, `"Accept": "application/json", "X-Channel": "vault"`, 1)})
}
