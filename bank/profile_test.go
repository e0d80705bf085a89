package bank_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// scriptedBank answers each path with a function of the request.
type scriptedBank struct {
	mu   sync.Mutex
	seen []*http.Request
	body []string
	srv  *httptest.Server
}

func newScriptedBank(t *testing.T, answer func(r *http.Request, body string) (int, string)) *scriptedBank {
	b := &scriptedBank{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.seen = append(b.seen, r)
		b.body = append(b.body, string(data))
		b.mu.Unlock()
		status, out := answer(r, string(data))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func profileFetch(t *testing.T, profileJSON, baseURL string, settings map[string]string, prev *bank.Token) (*bank.Token, error) {
	t.Helper()
	p, err := bank.ParseProfile([]byte(profileJSON))
	if err != nil {
		t.Fatalf("ParseProfile: %v", err)
	}
	prov, err := bank.NewProfileProvider("testbank", p)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &bank.Config{Provider: "testbank", BaseURL: baseURL, Settings: map[string]string{}, Secrets: map[string]string{}}
	for _, f := range prov.Fields() {
		if f.Name == "secret" {
			cfg.Secrets["secret"] = "sekrit-value"
		}
	}
	for k, v := range settings {
		cfg.Settings[k] = v
	}
	cfg.UseProvider(prov)
	c, err := bank.NewClient(cfg, nil, loopback)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close()
	return c.Fetch(context.Background(), prev)
}

const envelopeProfile = `{
  "fields": [{"name": "user", "required": true}, {"name": "secret", "secret": true, "required": true}, {"name": "unset"}],
  "steps": [
    {"name": "login", "method": "POST", "path": "/session",
     "headers": {"X-Request-ID": "{{gen.uuid}}", "X-Echo-ID": "{{gen.uuid}}", "X-Time": "{{gen.unix}}"},
     "body": {"type": "json", "fields": {"name": "{{field.user}}", "secret": "{{field.secret}}", "version": 2, "optional": "{{field.unset}}"}},
     "success": {"status": ["2xx"], "require": "result.ok"},
     "extract": {"session": "result.session.id", "tenant": "result.tenant"}},
    {"name": "token", "method": "POST", "path": "/tenants/{{step.login.tenant}}/token",
     "query": {"session": "{{step.login.session}}"},
     "body": {"type": "form", "fields": {"grant_type": "session", "session": "{{step.login.session}}"}},
     "success": {"status": ["200", "201"]}}
  ],
  "token": {"access_token": "data.accessToken", "token_type": "data.tokenType", "scope": "data.grantedScope",
            "refresh_token": "data.refreshToken",
            "expires_in": {"path": "data.expiresIn", "unit": "ms", "accept_string": true}},
  "errors": {"code": "error.code", "message": "error.text"}
}`

func TestProfileStepsCarryValuesAndReadEnvelopes(t *testing.T) {
	fake := newScriptedBank(t, func(r *http.Request, body string) (int, string) {
		switch r.URL.Path {
		case "/session":
			return 201, `{"result":{"ok":true,"session":{"id":"s/1 2"},"tenant":"t 9"}}`
		case "/tenants/t 9/token":
			return 201, `{"data":{"accessToken":"AT","tokenType":"Bearer","grantedScope":"all","refreshToken":"RT","expiresIn":"90000"}}`
		}
		return 404, `{"error":{"code":"E404","text":"no route"}}`
	})
	before := time.Now()
	tok, err := profileFetch(t, envelopeProfile, fake.srv.URL, map[string]string{"user": "ann"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "AT" || tok.TokenType != "Bearer" || tok.Scope != "all" || tok.RefreshToken != "RT" {
		t.Errorf("token %v", tok)
	}
	if life := tok.ExpiresAt.Sub(before); life < 89*time.Second || life > 91*time.Second {
		t.Errorf("lifetime %s, want 90s from 90000 ms", life)
	}
	login, token := fake.seen[0], fake.seen[1]
	if id := login.Header.Get("X-Request-ID"); len(id) != 36 || id != login.Header.Get("X-Echo-ID") {
		t.Errorf("gen.uuid %q / %q: want one UUID per request", id, login.Header.Get("X-Echo-ID"))
	}
	if ts, _ := strconv.ParseInt(login.Header.Get("X-Time"), 10, 64); ts < before.Unix()-1 || ts > time.Now().Unix()+1 {
		t.Errorf("gen.unix %q", login.Header.Get("X-Time"))
	}
	if fake.body[0] != `{"name":"ann","secret":"sekrit-value","version":2}` {
		t.Errorf("login body %s", fake.body[0])
	}
	if token.URL.RawPath != "/tenants/t%209/token" && token.URL.EscapedPath() != "/tenants/t%209/token" {
		t.Errorf("token path %q", token.URL.EscapedPath())
	}
	if token.URL.RawQuery != "session=s%2F1+2" || fake.body[1] != "grant_type=session&session=s%2F1+2" {
		t.Errorf("carried value: query %q body %q", token.URL.RawQuery, fake.body[1])
	}
	if token.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", token.Header.Get("Content-Type"))
	}
}

func TestProfileErrorsAndSuccessCriteria(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"error status with mapped fields", 403, `{"error":{"code":"E-7","text":"tenant locked"}}`, "testbank login request failed: HTTP 403: bank code E-7: tenant locked"},
		{"HTTP 200 error body fails require", 200, `{"result":{"ok":false},"error":{"code":"E-9","text":"bad user"}}`, "HTTP 200: bank code E-9: bad user"},
		{"require without error fields", 200, `{"result":{}}`, "testbank login request failed: HTTP 200: response has no result.ok"},
		{"missing extracted value", 200, `{"result":{"ok":true,"tenant":"t"}}`, "response has no result.session.id"},
		{"status not allowed", 302, `{}`, "redirect not followed"},
		{"html", 500, `<html>oops sekrit-value</html>`, "HTTP 500: non-JSON response (HTML page)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newScriptedBank(t, func(*http.Request, string) (int, string) { return tc.status, tc.body })
			_, err := profileFetch(t, envelopeProfile, fake.srv.URL, map[string]string{"user": "ann"}, nil)
			var ue *bank.UpstreamError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sekrit") {
				t.Fatal("error leaks the secret")
			}
		})
	}
}

func TestProfileExpiryForms(t *testing.T) {
	now := time.Now()
	jwt := "eyJhbGciOiJub25lIn0." + strings.TrimRight(b64(`{"exp":`+itoa(now.Add(10*time.Minute).Unix())+`}`), "=") + ".sig"
	cases := []struct {
		name, token, body string
		want              time.Duration
		err               string
	}{
		{"seconds default", `{}`, `{"access_token":"a","expires_in":120}`, 120 * time.Second, ""},
		{"string refused by default", `{}`, `{"access_token":"a","expires_in":"120"}`, 0, "expires_in: must be a number of seconds"},
		{"string accepted", `{"expires_in":{"path":"expires_in","accept_string":true}}`, `{"access_token":"a","expires_in":"120"}`, 120 * time.Second, ""},
		{"milliseconds", `{"expires_in":{"path":"ttl","unit":"ms"}}`, `{"access_token":"a","ttl":7200000}`, 2 * time.Hour, ""},
		{"absolute rfc3339", `{"expires_at":{"path":"result.accessTokenExpiryTime","format":"rfc3339"}}`,
			`{"access_token":"a","result":{"accessTokenExpiryTime":"` + now.Add(time.Hour).UTC().Format(time.RFC3339) + `"}}`, time.Hour, ""},
		{"absolute unix_ms string", `{"expires_at":{"path":"data.token_expiry","format":"unix_ms"}}`,
			`{"access_token":"a","data":{"token_expiry":"` + strconv.FormatInt(now.Add(30*time.Minute).UnixMilli(), 10) + `"}}`, 30 * time.Minute, ""},
		{"absolute in the past", `{"expires_at":{"path":"exp","format":"unix"}}`, `{"access_token":"a","exp":1000}`, 0, "in the past"},
		{"jwt exp fallback", `{}`, `{"access_token":"` + jwt + `"}`, 10 * time.Minute, ""},
		{"jwt fallback off", `{"no_jwt_exp_fallback":true}`, `{"access_token":"` + jwt + `"}`, 0, "response has no expires_in"},
		{"nothing", `{}`, `{"access_token":"opaque"}`, 0, "carries no expiry"},
		{"too long", `{}`, `{"access_token":"a","expires_in":1e12}`, 0, "must be a positive number of seconds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newScriptedBank(t, func(*http.Request, string) (int, string) { return 200, tc.body })
			profile := `{"steps":[{"name":"token","method":"POST","path":"/t"}],"token":` + tc.token + `}`
			tok, err := profileFetch(t, profile, fake.srv.URL, nil, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := tok.ExpiresAt.Sub(now) - tc.want; d < -2*time.Second || d > 2*time.Second {
				t.Errorf("expires in %s, want %s", tok.ExpiresAt.Sub(now), tc.want)
			}
		})
	}
}

func TestProfileRefresh(t *testing.T) {
	const profile = `{
	  "fields": [{"name": "secret", "secret": true}],
	  "steps": [{"name": "login", "method": "POST", "path": "/login", "body": {"type": "none"}}],
	  "refresh": {"steps": [{"name": "refresh", "method": "POST", "path": "/refresh",
	              "body": {"type": "json", "fields": {"refreshToken": "{{token.refresh_token}}"}}}]},
	  "token": {"expires_in": {"path": "expiresIn"}}
	}`
	var mu sync.Mutex
	valid := map[string]bool{"rt-good": true}
	fake := newScriptedBank(t, func(r *http.Request, body string) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/refresh" {
			var in struct{ RefreshToken string }
			json.Unmarshal([]byte(body), &in)
			if !valid[in.RefreshToken] {
				return 400, `{"error":"invalid_grant"}`
			}
			delete(valid, in.RefreshToken)
			return 200, `{"access_token":"from-refresh","expiresIn":60,"refresh_token":"rt-next"}`
		}
		return 200, `{"access_token":"from-login","expiresIn":60,"refresh_token":"rt-first"}`
	})
	// The bank's host comes from base_url (a step url's host must be
	// literal; see profile_url.go).
	withEndpoint, base := profile, fake.srv.URL
	settings := map[string]string{}
	tok, err := profileFetch(t, withEndpoint, base, settings, &bank.Token{RefreshToken: "rt-good"})
	if err != nil || tok.AccessToken != "from-refresh" || tok.RefreshToken != "rt-next" {
		t.Fatalf("refresh: %v %v", tok, err)
	}
	// A used refresh token is refused: log in again, once.
	tok, err = profileFetch(t, withEndpoint, base, settings, &bank.Token{RefreshToken: "rt-good"})
	if err != nil || tok.AccessToken != "from-login" || len(fake.seen) != 3 {
		t.Fatalf("after a refused refresh: %v %v (%d requests)", tok, err, len(fake.seen))
	}
	if fake.body[1] != `{"refreshToken":"rt-good"}` {
		t.Errorf("refresh body %s", fake.body[1])
	}
	// on_rejected: fail gives the bank's answer instead.
	failing := strings.Replace(withEndpoint, `"refresh": {`, `"refresh": {"on_rejected": "fail", `, 1)
	if _, err := profileFetch(t, failing, base, settings, &bank.Token{RefreshToken: "rt-gone"}); err == nil ||
		!strings.Contains(err.Error(), "testbank refresh request failed: HTTP 400: bank code invalid_grant") {
		t.Fatalf("on_rejected fail: %v", err)
	}
}

func TestProfileValidationLocatesTheProblem(t *testing.T) {
	step := `{"name":"token","method":"POST","path":"/t"}`
	cases := []struct {
		profile, where string
	}{
		{`{"steps":[]}`, "steps"},
		{`{"steps":[` + step + `],"colour":"blue"}`, "unknown field"},
		{`{"steps":[{"name":"token","method":"DELETE","path":"/t"}]}`, "steps[0].method"},
		{`{"steps":[{"name":"token","method":"POST"}]}`, "steps[0]: set exactly one of path"},
		{`{"steps":[{"name":"token","method":"POST","path":"t"}]}`, "steps[0].path"},
		{`{"steps":[{"name":"token","method":"POST","path":"/t","headers":{"X-A":"{{field.nope}}"}}]}`, `steps[0].headers.X-A: a {{…}} reference names a field the profile does not declare`},
		{`{"steps":[{"name":"token","method":"POST","path":"/t","headers":{"X-A":"{{gen.random}}"}}]}`, "names no generator"},
		{`{"steps":[{"name":"token","method":"POST","path":"/t","headers":{"X-A":"{{field.x"}}]}`, "unclosed {{"},
		{`{"steps":[{"name":"token","method":"POST","path":"/t","body":{"type":"json","fields":{"a":"{{step.code.code}}"}}}]}`, "names a step that does not run before this one"},
		{`{"steps":[{"name":"code","method":"GET","path":"/c","extract":{"code":"code"}},{"name":"token","method":"POST","path":"/t","query":{"c":"{{step.code.other}}"}}]}`, `steps[1].query.c: a {{…}} reference names a value its step does not extract`},
		{`{"steps":[{"name":"token","method":"POST","path":"/t","body":{"type":"json","fields":{"r":"{{token.refresh_token}}"}}}]}`, "refresh steps only"},
		{`{"steps":[{"name":"token","method":"POST","path":"/t","body":{"type":"xml"}}]}`, "steps[0].body.type"},
		{`{"steps":[{"name":"token","method":"POST","path":"/t","body":{"type":"form","fields":{"n":1}}}]}`, "form values must be strings"},
		{`{"steps":[{"name":"token","method":"POST","path":"/t","success":{"status":["20"]}}]}`, "steps[0].success.status"},
		{`{"steps":[{"name":"token","method":"POST","path":"/t","headers":{"Bad Header":"x"}}]}`, "not a valid header name"},
		{`{"fields":[{"name":"base_url"}],"steps":[` + step + `]}`, "fields[0].name"},
		{`{"fields":[{"name":"a"},{"name":"a"}],"steps":[` + step + `]}`, "declared twice"},
		{`{"fields":[{"name":"a","secret":true,"default":"x"}],"steps":[` + step + `]}`, "fields[0].default"},
		{`{"steps":[` + step + `],"token":{"expires_in":{"path":"x","unit":"h"}}}`, "token.expires_in.unit"},
		{`{"steps":[` + step + `],"token":{"expires_at":{"path":"x","format":"iso"}}}`, "token.expires_at.format"},
		{`{"steps":[` + step + `],"token":{"access_token":"data..token"}}`, "token.access_token"},
		{`{"steps":[` + step + `],"refresh":{"steps":[]}}`, "refresh.steps"},
		{`{"base_url":"http://bank.example","steps":[` + step + `]}`, "base_url"},
	}
	for _, tc := range cases {
		_, err := bank.ParseProfile([]byte(tc.profile))
		var pe *bank.ProfileError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.where) {
			t.Errorf("profile %s\n  error %v, want it to say %q", tc.profile, err, tc.where)
		}
	}
	for _, name := range []string{"isbank", "etranzact", "rakbank", "accelerationcloud"} {
		if _, err := bank.BuiltinProfile(name); err != nil {
			t.Errorf("built-in %s: %v", name, err)
		}
	}
}

func TestProfileOAuthMetadataMustBeJSON(t *testing.T) {
	_, err := bank.ParseProfile([]byte(`{"fields":[{"name":"oauth_metadata"}],"steps":[{"name":"token","method":"POST","path":"/t"}]}`))
	if err == nil || !strings.Contains(err.Error(), "fields[0].type: oauth_metadata must be declared with type json") {
		t.Fatalf("error %v", err)
	}
}

func TestProfileClientAssertionValidation(t *testing.T) {
	for doc, want := range map[string]string{
		`{"fields":[{"name":"k","secret":true}],"steps":[{"name":"token","method":"POST","path":"/t","client_assertion":{"client_id":"c","private_key":"{{field.k}}"}}]}`:                                      "steps[0].client_assertion: needs a body of type form",
		`{"fields":[{"name":"k","secret":true}],"steps":[{"name":"token","method":"POST","path":"/t","body":{"type":"form"},"client_assertion":{"client_id":"c","private_key":"{{field.k}}","alg":"HS256"}}]}`: "steps[0].client_assertion.alg",
		`{"steps":[{"name":"token","method":"POST","path":"/t","body":{"type":"form"},"client_assertion":{"client_id":"c","private_key":"{{field.k}}"}}]}`:                                                     `steps[0].client_assertion.private_key: a {{…}} reference names a field the profile does not declare`,
	} {
		if _, err := bank.ParseProfile([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", doc, err, want)
		}
	}
}
