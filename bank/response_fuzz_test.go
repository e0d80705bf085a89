package bank

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseToken feeds arbitrary bank answers to the response parser of
// every built-in provider's profile and of the oauth2 provider: it must
// never panic, never accept a token without an access token or with a
// non-positive lifetime, and never put a configured secret in its error.
func FuzzParseToken(f *testing.F) {
	for _, seed := range []string{
		`{"access_token":"a","token_type":"bearer","expires_in":60}`,
		`{"access_token":"a","expires_in":"60"}`,
		`{"access_token":"a","expires_in":-1}`,
		`{"access_token":"a","expires_in":1e300}`,
		`{"access_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.x"}`,
		`{"code":400,"errorMessage":"authentication failed","error":null,"data":null}`,
		`{"status":"401","response_code":"X","response_message":"hunter2-secret","description":"d"}`,
		`<html>hunter2-secret</html>`,
		`{"access_token":null}`, `[]`, `null`, `{`, ``,
		`{"access_token":"a","expires_in":60,"refreshToken":"r","refresh_expires_in":1800}`,
		`{"data":{"access_token":"a","expires_in":60}}`,
	} {
		f.Add([]byte(seed), 200)
	}
	cfg := &Config{Provider: "etranzact", Settings: map[string]string{"username": "u"}, Secrets: map[string]string{"password": "hunter2-secret"}}
	c, err := NewClient(cfg, nil, WithEgress(loopbackEgress))
	if err != nil {
		f.Fatal(err)
	}
	parsers := []*profileProvider{standardResponse}
	for _, name := range Names() {
		if p, ok := Lookup(name); ok {
			if pp, ok := p.(*profileProvider); ok {
				parsers = append(parsers, pp)
			}
		}
	}
	if len(parsers) < 5 {
		f.Fatalf("%d parsers, want oauth2 and the four built-in profiles", len(parsers))
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		for _, pp := range parsers {
			tok, err := pp.parseToken(c, "token", &answer{status: status, body: body}, now)
			if err != nil {
				if strings.Contains(err.Error(), "hunter2-secret") {
					t.Fatalf("%s: error shows the secret: %v", pp.Name(), err)
				}
				continue
			}
			if tok.AccessToken == "" || !tok.ExpiresAt.After(now) {
				t.Fatalf("%s accepted %q as %+v", pp.Name(), body, tok)
			}
		}
	})
}
