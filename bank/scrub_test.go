package bank_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/go-hclog"
)

// echoBank answers every request with a 401 whose error_description is
// what the request carried (Authorization, X-Api-Key, body), after pad
// characters of padding (to make the echo straddle the point where bank
// text is shortened). It keeps the last request for the test to compute the
// forms from what was really sent.
type echoBank struct {
	srv  *httptest.Server
	mu   sync.Mutex
	last *http.Request
	body string
}

func newEchoBank(t *testing.T, pad int, doubleJSON bool) *echoBank {
	b := &echoBank{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.last, b.body = r, string(data)
		b.mu.Unlock()
		text := strings.Repeat("x", pad) + "auth=" + r.Header.Get("Authorization") + " key=" + r.Header.Get("X-Api-Key") + " body=" + string(data)
		if doubleJSON { // a gateway that wraps the echo in JSON once more
			enc, _ := json.Marshal(text)
			text = string(enc)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": text})
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// forms is every way the test knows a secret can be written.
func forms(secret string) []string {
	j, _ := json.Marshal(secret)
	js := string(j[1 : len(j)-1])
	return []string{secret, url.QueryEscape(secret), url.PathEscape(secret), js, strings.ReplaceAll(js, "/", `\/`)}
}

func basic(user, pass string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		out = append(out, forms(enc.EncodeToString([]byte(user+":"+pass)))...)
		u, p := url.QueryEscape(user), url.QueryEscape(pass)
		out = append(out, forms(enc.EncodeToString([]byte(u+":"+p)))...)
	}
	return out
}

// leaks reports which of the forms (at least 8 characters: a shorter piece
// of base64 can occur by chance) occur in text, or a 12-character piece of
// one (a form cut in two by shortening).
func leaks(text string, all []string) []string {
	var out []string
	for _, f := range all {
		if len(f) < 8 {
			continue
		}
		if strings.Contains(text, f) {
			out = append(out, f)
			continue
		}
		for i := 0; i+12 <= len(f); i++ {
			if strings.Contains(text, f[i:i+12]) {
				out = append(out, f+" (in part)")
				break
			}
		}
	}
	return out
}

// A bank that echoes the request gets no form of a secret into the error
// or the logs: raw, form- and JSON-escaped, base64 Basic credentials in
// both encodings, a rendered header value, a signed client assertion.
func TestEchoedSecretsAreScrubbed(t *testing.T) {
	const secret = `Sec+ret/ü&x=<1>"q"`
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))

	profile := `{
	  "fields": [{"name": "client_id"}, {"name": "client_secret", "secret": true}, {"name": "private_key", "secret": true}],
	  "steps": [{"name": "token", "method": "POST", "path": "/token",
	    "headers": {"X-Api-Key": "Key {{field.client_secret}}-{{field.client_id}}"},
	    "client_assertion": {"client_id": "{{field.client_id}}", "private_key": "{{field.private_key}}"},
	    "body": {"type": "form", "fields": {"grant_type": "client_credentials", "client_secret": "{{field.client_secret}}"}}}]
	}`
	jsonProfile := `{
	  "fields": [{"name": "client_id"}, {"name": "client_secret", "secret": true}],
	  "steps": [{"name": "token", "method": "POST", "path": "/token",
	    "basic_auth": {"username": "{{field.client_id}}", "password": "{{field.client_secret}}", "encoding": "rfc6749"},
	    "body": {"type": "json", "fields": {"secret": "{{field.client_secret}}"}}}]
	}`
	cases := []struct {
		name       string
		pad        int
		doubleJSON bool
		cfg        func(url string) *bank.Config
	}{
		{"oauth2 basic rfc6749", 0, false, func(u string) *bank.Config {
			return oauth2Config(u, map[string]string{})
		}},
		{"oauth2 basic rfc6749, cut", 270, false, func(u string) *bank.Config {
			return oauth2Config(u, map[string]string{})
		}},
		{"oauth2 basic raw", 0, true, func(u string) *bank.Config {
			return oauth2Config(u, map[string]string{"basic_encoding": "raw"})
		}},
		{"oauth2 post", 0, true, func(u string) *bank.Config {
			return oauth2Config(u, map[string]string{"auth_method": "client_secret_post"})
		}},
		{"profile header and assertion", 0, false, func(u string) *bank.Config {
			return profileConfig(t, profile, u, map[string]string{"client_secret": secret, "private_key": keyPEM})
		}},
		{"profile json body", 0, true, func(u string) *bank.Config {
			return profileConfig(t, jsonProfile, u, map[string]string{"client_secret": secret})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newEchoBank(t, tc.pad, tc.doubleJSON)
			var logs bytes.Buffer
			logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
			cfg := tc.cfg(fake.srv.URL)
			if cfg.Secrets["client_secret"] == "" {
				cfg.Secrets["client_secret"] = secret
			}
			c, err := bank.NewClient(cfg, logger, loopback)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Fetch(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), "invalid_client") {
				t.Fatalf("err = %v, want the bank's invalid_client", err)
			}
			all := append(forms(secret), basic("client-1", secret)...)
			fake.mu.Lock()
			if v := fake.last.Header.Get("X-Api-Key"); v != "" {
				all = append(all, forms(v)...)
			}
			if q, _ := url.ParseQuery(fake.body); q.Get("client_assertion") != "" {
				a := q.Get("client_assertion")
				all = append(all, forms(a)...)
				all = append(all, forms(a[strings.LastIndex(a, ".")+1:])...) // the signature alone
			}
			fake.mu.Unlock()
			for where, text := range map[string]string{"error": err.Error(), "logs": logs.String()} {
				if l := leaks(text, all); len(l) > 0 {
					t.Errorf("%s shows %q:\n%s", where, l, text)
				}
			}
		})
	}
}

func oauth2Config(base string, extra map[string]string) *bank.Config {
	cfg := &bank.Config{Provider: "oauth2", Settings: map[string]string{"token_url": base + "/token", "client_id": "client-1"},
		Secrets: map[string]string{}}
	for k, v := range extra {
		cfg.Settings[k] = v
	}
	return cfg
}

func profileConfig(t *testing.T, doc, base string, secrets map[string]string) *bank.Config {
	t.Helper()
	p, err := bank.ParseProfile([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := bank.NewProfileProvider("echo", p)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &bank.Config{Provider: "echo", BaseURL: base, Settings: map[string]string{"client_id": "client-1"}, Secrets: secrets}
	cfg.UseProvider(prov)
	return cfg
}
