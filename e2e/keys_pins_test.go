//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// tokenHost is a token endpoint on loopback that records every client
// assertion it is sent and answers each request with a token.
type tokenHost struct {
	*httptest.Server
	mu         sync.Mutex
	requests   int
	assertions []string
}

func newTokenHost(t *testing.T) *tokenHost {
	h := &tokenHost{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		h.mu.Lock()
		h.requests++
		if a := r.PostForm.Get("client_assertion"); a != "" {
			h.assertions = append(h.assertions, a)
		}
		n := h.requests
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"pins-%p-%d","token_type":"Bearer","expires_in":3600}`, h, n)
	}))
	t.Cleanup(h.Close)
	return h
}

// seen returns how many requests arrived and the claims of each assertion.
func (h *tokenHost) seen(t *testing.T) (int, []map[string]any) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var claims []map[string]any
	for _, a := range h.assertions {
		parts := strings.Split(a, ".")
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		var c map[string]any
		if err != nil || json.Unmarshal(raw, &c) != nil {
			t.Fatalf("an assertion that is no JWT: %d parts", len(parts))
		}
		claims = append(claims, c)
	}
	return h.requests, claims
}

// operatorToken creates a token with the operator policy of
// docs/policies.md: config/* and status/*, no key/*, no token/*.
func operatorToken(t *testing.T, mount string) string {
	t.Helper()
	policy := fmt.Sprintf(`path "%[1]s/config/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "%[1]s/config"   { capabilities = ["list"] }
path "%[1]s/status/*" { capabilities = ["read"] }
path "%[1]s/status"   { capabilities = ["list"] }
`, mount)
	file := filepath.Join(t.TempDir(), "operator.hcl")
	if err := os.WriteFile(file, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.MustCLI("policy", "write", mount+"-operator", file); err != nil {
		t.Fatal(err)
	}
	out, err := vault.MustCLI("token", "create", "-policy="+mount+"-operator", "-field=token")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// TestConfigWriterCannotSendKeptKeyAssertionsElsewhere is issue 18's
// finding 1 on a real Vault: an operator with only config/* cannot get a
// client assertion signed by a kept key to a host the key's owner did not
// approve (allowed_endpoints, allowed_audiences), by redirecting token_url,
// assertion_audience or a profile's base_url, or by a new config naming
// the key for another client; cannot borrow a key for a purpose it lacks;
// and cannot widen a key. The attacker's host receives nothing, while the
// approved bank keeps getting assertions for its own audience.
func TestConfigWriterCannotSendKeptKeyAssertionsElsewhere(t *testing.T) {
	t.Parallel()
	bank, evil := newTokenHost(t), newTokenHost(t)
	mount := fmt.Sprintf("bankauth-%d", mountSeq.Add(1))
	if err := vault.Mount("bankauth", mount); err != nil {
		t.Fatal(err)
	}
	// The key's owner (root here) makes the keys and a profile.
	cliJSON(t, "write", mount+"/key/sig", "type=ec-p256", "purpose=client_auth",
		"allowed_endpoints="+bank.URL+"/", "allowed_audiences="+bank.URL)
	cliJSON(t, "write", mount+"/key/docsig", "type=ec-p256", "purpose=request_signing")
	if _, err := vault.MustCLI("write", mount+"/profile/pbank", `profile={
	  "fields": [{"name": "client_id", "required": true}, {"name": "private_key", "secret": true}],
	  "steps": [{"name": "token", "method": "POST", "path": "/token",
	    "client_assertion": {"client_id": "{{field.client_id}}", "private_key": "{{field.private_key}}"},
	    "body": {"type": "form", "fields": {"grant_type": "client_credentials"}}}]}`); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.MustCLI("write", mount+"/config/ob", "provider=oauth2", "token_url="+bank.URL+"/token",
		"client_id=tpp", "auth_method=private_key_jwt", "signing_key=sig", "assertion_audience="+bank.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.MustCLI("write", "-f", mount+"/token/ob"); err != nil {
		t.Fatal(err)
	}

	op := operatorToken(t, mount)
	oauth2 := func(name, tokenURL string, extra ...string) []string {
		return append([]string{"write", mount + "/config/" + name, "provider=oauth2", "token_url=" + tokenURL,
			"client_id=someone-else", "auth_method=private_key_jwt"}, extra...)
	}
	refused := []struct {
		why  string
		args []string
		want []string // in the error, besides the config field's name
	}{
		{"token_url redirected", []string{"write", mount + "/config/ob", "token_url=" + evil.URL + "/token"}, []string{`"sig"`, "allowed_endpoints"}},
		{"assertion_audience changed", []string{"write", mount + "/config/ob", "assertion_audience=" + evil.URL}, []string{`"sig"`, "allowed_audiences"}},
		{"both", []string{"write", mount + "/config/ob", "token_url=" + evil.URL + "/token", "assertion_audience=" + evil.URL}, []string{`"sig"`}},
		{"a new config to another host", oauth2("evil", evil.URL+"/token", "signing_key=sig"), []string{`"sig"`, "allowed_endpoints"}},
		{"a new config with another audience", oauth2("evil", bank.URL+"/token", "signing_key=sig", "assertion_audience="+evil.URL), []string{`"sig"`, "allowed_audiences"}},
		{"a profile's base_url", []string{"write", mount + "/config/evil", "provider=pbank", "base_url=" + evil.URL, "client_id=x", "signing_key=sig"}, []string{`"sig"`, "allowed_endpoints"}},
		{"a request_signing key as signing_key", oauth2("evil", evil.URL+"/token", "signing_key=docsig"), []string{`"docsig"`, "client_auth"}},
		{"a client_auth key as dpop_key", []string{"write", mount + "/config/evil", "provider=oauth2", "token_url=" + evil.URL + "/token",
			"client_id=x", "client_secret=s", "dpop_key=sig"}, []string{`"sig"`, "dpop"}},
	}
	for _, c := range refused {
		r := vault.CLI(op, c.args...)
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, "Code: 400") {
			t.Errorf("%s: the operator's write was not refused: exit %d %s", c.why, r.ExitCode, r.Stderr)
			continue
		}
		if err := contains(r.Stderr, c.want...); err != nil {
			t.Errorf("%s: %v", c.why, err)
		}
		if strings.Contains(r.Stderr, evil.URL) {
			t.Errorf("%s: the error quotes the value sent", c.why)
		}
	}
	// Widening the key, or giving another key client_auth, needs key/*.
	for _, args := range [][]string{
		{"write", mount + "/key/sig", "allowed_endpoints=" + evil.URL + "/"},
		{"write", mount + "/key/sig", "allowed_audiences=" + evil.URL},
		{"write", mount + "/key/docsig", "purpose=client_auth,request_signing"},
		{"write", mount + "/key/mine", "type=ec-p256", "purpose=client_auth"},
	} {
		if r := vault.CLI(op, args...); r.ExitCode == 0 || !strings.Contains(r.Stderr, "Code: 403") {
			t.Errorf("the operator ran vault %s: exit %d %s", strings.Join(args, " "), r.ExitCode, r.Stderr)
		}
	}

	// An app reads every connection there is, forcing a fetch.
	out, err := vault.MustCLI("list", "-format=json", mount+"/config")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	_ = json.Unmarshal([]byte(out), &names)
	for _, n := range names {
		r := vault.CLI("", "write", "-f", "-field=access_token", mount+"/token/"+n)
		seen.add(strings.TrimSpace(r.Stdout))
	}
	if n, _ := evil.seen(t); n != 0 {
		t.Errorf("the attacker's host received %d requests", n)
	}
	n, claims := bank.seen(t)
	if n != 2 || len(claims) != 2 {
		t.Fatalf("the bank received %d requests, %d assertions; want 2 (configs %v)", n, len(claims), names)
	}
	for _, c := range claims {
		if c["iss"] != "tpp" || c["aud"] != bank.URL {
			t.Errorf("the bank got an assertion for %v at %v", c["iss"], c["aud"])
		}
	}
}
