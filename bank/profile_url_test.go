package bank_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// A step url's scheme and host are literal and checked when the profile is
// written; the old validator accepted all of these, and a field spliced
// into the host sent the request to attacker.example.
func TestProfileStepURLsAreCheckedOnWrite(t *testing.T) {
	doc := func(url string) string {
		return `{"fields": [{"name": "region"}], "steps": [{"name": "token", "method": "POST", "url": "` + url + `"}]}`
	}
	for url, want := range map[string]string{
		"https://{{field.region}}.bank.example/token": "must be literal",
		"{{field.region}}/token":                      "must be literal",
		"https://bank.example{{field.region}}/token":  "must be literal",
		"file:///etc/passwd":                          "",
		"http://169.254.169.254/latest/meta-data":     "https",
		"https://169.254.169.254/latest/meta-data":    "link-local",
		"https://[fe80::1]/token":                     "link-local",
		"https://0.0.0.0/token":                       "unspecified",
		"http://bank.example/token":                   "https",
		"https://user:pw@bank.example/token":          "user info",
		"https://bank.example/token#frag":             "fragment",
		"gopher://bank.example/token":                 "https",
	} {
		_, err := bank.ParseProfile([]byte(doc(url)))
		if err == nil || !strings.Contains(err.Error(), "steps[0].url") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want a steps[0].url error with %q", url, err, want)
		}
	}
	for _, ok := range []string{"https://auth.bank.example/token", "https://auth.bank.example:8443/t/{{field.region}}?r={{field.region}}", "http://127.0.0.1:8080/token"} {
		if _, err := bank.ParseProfile([]byte(doc(ok))); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	// Found by FuzzProfile: accepted, then never sendable.
	for doc, want := range map[string]string{
		`{"steps": [{"name": "t", "method": "POST", "path": "/%zz"}]}`:                             "steps[0].path: is not a valid URL",
		`{"steps": [{"name": "t", "method": "POST", "url": "https://bank.example/a b"}]}`:          "steps[0].url: must not contain spaces",
		`{"steps": [{"name": "t", "method": "POST", "path": "/t", "headers": {"X": "a\u0000b"}}]}`: "steps[0].headers.X: is not a valid header value",
	} {
		if _, err := bank.ParseProfile([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", doc, err, want)
		}
	}
	for base, want := range map[string]string{"https://169.254.169.254": "link-local", "https://[::]": "unspecified"} {
		if err := bank.ValidateBaseURL(base); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("base_url %s: err = %v, want %q", base, err, want)
		}
	}
}

// Field values in a step url's path and query are escaped for where they
// go: a value cannot add path segments, a query or another parameter.
func TestProfileStepURLEscapesFieldValues(t *testing.T) {
	fake := newScriptedBank(t, func(r *http.Request, _ string) (int, string) {
		return 200, `{"access_token":"t","expires_in":60}`
	})
	profile := `{"fields": [{"name": "tenant"}], "steps": [{"name": "token", "method": "POST",
	  "url": "` + fake.srv.URL + `/api/{{field.tenant}}/token?t={{field.tenant}}"}]}`
	if _, err := profileFetch(t, profile, "", map[string]string{"tenant": "a/../b?c=1&d#e"}, nil); err != nil {
		t.Fatal(err)
	}
	r := fake.seen[0]
	if r.URL.EscapedPath() != "/api/a%2F..%2Fb%3Fc=1&d%23e/token" || r.URL.RawQuery != "t=a%2F..%2Fb%3Fc%3D1%26d%23e" {
		t.Fatalf("bank saw path %q query %q", r.URL.EscapedPath(), r.URL.RawQuery)
	}
	if q := r.URL.Query(); len(q) != 1 || q.Get("t") != "a/../b?c=1&d#e" {
		t.Fatalf("query parameters %v", q)
	}
	_ = bank.FieldBaseURL
}
