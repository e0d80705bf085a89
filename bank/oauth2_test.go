package bank_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// tokenServer is a minimal RFC 6749 token endpoint that records what it got.
type tokenServer struct {
	mu      sync.Mutex
	form    url.Values
	header  http.Header
	answer  func(w http.ResponseWriter)
	srv     *httptest.Server
	tokenAt string
}

func newTokenServer(t *testing.T) *tokenServer {
	ts := &tokenServer{}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		ts.mu.Lock()
		ts.form, ts.header = form, r.Header.Clone()
		answer := ts.answer
		ts.mu.Unlock()
		if answer != nil {
			answer(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at-1","token_type":"Bearer","expires_in":300,"scope":"accounts"}`)
	}))
	t.Cleanup(ts.srv.Close)
	ts.tokenAt = ts.srv.URL + "/oauth2/token"
	return ts
}

func (ts *tokenServer) last() (url.Values, http.Header) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.form, ts.header
}

const oauthSecret = "s3cr/t+with=odd&chars %"

func oauthConfig(tokenURL string, settings map[string]string, secrets map[string]string) *bank.Config {
	cfg := &bank.Config{Provider: "oauth2", Settings: map[string]string{"token_url": tokenURL, "client_id": "bank client:1"},
		Secrets: map[string]string{}}
	for k, v := range settings {
		cfg.Settings[k] = v
	}
	for k, v := range secrets {
		cfg.Secrets[k] = v
	}
	return cfg
}

func TestOAuth2ClientSecretBasicEncodings(t *testing.T) {
	ts := newTokenServer(t)
	for _, tc := range []struct {
		encoding string
		want     string
	}{
		{"", url.QueryEscape("bank client:1") + ":" + url.QueryEscape(oauthSecret)},
		{"rfc6749", url.QueryEscape("bank client:1") + ":" + url.QueryEscape(oauthSecret)},
		{"raw", "bank client:1:" + oauthSecret},
	} {
		settings := map[string]string{"scope": "accounts payments", "audience": "https://api.bank.example"}
		if tc.encoding != "" {
			settings["basic_encoding"] = tc.encoding
		}
		tok, err := fetch(t, oauthConfig(ts.tokenAt, settings, map[string]string{"client_secret": oauthSecret}), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.encoding, err)
		}
		if tok.AccessToken != "at-1" || tok.Scope != "accounts" || tok.Lifetime() < 299*time.Second {
			t.Errorf("token %v", tok)
		}
		form, h := ts.last()
		got, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h.Get("Authorization"), "Basic "))
		if string(got) != tc.want {
			t.Errorf("%q: Basic credentials %q, want %q", tc.encoding, got, tc.want)
		}
		want := url.Values{"grant_type": {"client_credentials"}, "scope": {"accounts payments"}, "audience": {"https://api.bank.example"}}
		if form.Encode() != want.Encode() {
			t.Errorf("form %v, want %v", form, want)
		}
		if h.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("content type %q", h.Get("Content-Type"))
		}
	}
}

func TestOAuth2ClientSecretPost(t *testing.T) {
	ts := newTokenServer(t)
	if _, err := fetch(t, oauthConfig(ts.tokenAt, map[string]string{"auth_method": "client_secret_post"},
		map[string]string{"client_secret": oauthSecret}), nil); err != nil {
		t.Fatal(err)
	}
	form, h := ts.last()
	if h.Get("Authorization") != "" || form.Get("client_id") != "bank client:1" || form.Get("client_secret") != oauthSecret ||
		form.Get("grant_type") != "client_credentials" || form.Has("scope") {
		t.Errorf("form %v, authorization %q", form, h.Get("Authorization"))
	}
}

func TestOAuth2PrivateKeyJWT(t *testing.T) {
	ts := newTokenServer(t)
	ca, _ := testpki.NewCA("keys")
	rsaLeaf, _ := ca.Client("rsa", 2048)
	ecLeaf, _ := ca.Client("ec", 0)
	for _, tc := range []struct {
		alg, key, aud string
	}{
		{"", string(rsaLeaf.KeyPEM), ""},
		{"PS256", string(rsaLeaf.KeyPEM), "https://issuer.bank.example"},
		{"ES256", string(ecLeaf.KeyPEM), ""},
	} {
		settings := map[string]string{"auth_method": "private_key_jwt", "key_id": "kid-7"}
		if tc.alg != "" {
			settings["signing_alg"] = tc.alg
		}
		if tc.aud != "" {
			settings["assertion_audience"] = tc.aud
		}
		cfg := oauthConfig(ts.tokenAt, settings, map[string]string{"private_key": tc.key})
		c, err := bank.NewClient(cfg, nil, loopback)
		if err != nil {
			t.Fatal(err)
		}
		jtis := map[string]bool{}
		for i := 0; i < 2; i++ {
			before := time.Now()
			if _, err := c.Fetch(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			form, h := ts.last()
			if h.Get("Authorization") != "" || form.Get("client_assertion_type") != bank.ClientAssertionType || form.Get("client_id") != "bank client:1" {
				t.Fatalf("form %v", form)
			}
			key, _ := bank.ParsePrivateKeyPEM(tc.key)
			wantAlg := map[string]string{"": "RS256"}[tc.alg]
			if wantAlg == "" {
				wantAlg = tc.alg
			}
			tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(wantAlg)})
			if err != nil {
				t.Fatalf("%s: assertion: %v", wantAlg, err)
			}
			var claims jwt.Claims
			if err := tok.Claims(key.(crypto.Signer).Public(), &claims); err != nil {
				t.Fatalf("%s: signature does not verify: %v", wantAlg, err)
			}
			wantAud := tc.aud
			if wantAud == "" {
				wantAud = ts.tokenAt
			}
			if claims.Issuer != "bank client:1" || claims.Subject != "bank client:1" || len(claims.Audience) != 1 || claims.Audience[0] != wantAud {
				t.Errorf("claims %+v, want aud %s", claims, wantAud)
			}
			if tok.Headers[0].KeyID != "kid-7" {
				t.Errorf("kid %q", tok.Headers[0].KeyID)
			}
			if life := claims.Expiry.Time().Sub(before); life < 4*time.Minute || life > 6*time.Minute {
				t.Errorf("assertion lives %s, want about 5m", life)
			}
			if claims.ID == "" || jtis[claims.ID] {
				t.Errorf("jti %q not fresh", claims.ID)
			}
			jtis[claims.ID] = true
		}
		c.Close()
	}
}

func TestOAuth2TLSClientAuth(t *testing.T) {
	clientCA, _ := testpki.NewCA("client CA")
	leaf, _ := clientCA.Client("partner", 0)
	serverCA, _ := testpki.NewCA("server CA")
	tlsCfg, err := serverCA.ServerTLS(clientCA)
	if err != nil {
		t.Fatal(err)
	}
	var got url.Values
	var cn string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got, cn = r.PostForm, r.TLS.PeerCertificates[0].Subject.CommonName
		io.WriteString(w, `{"access_token":"at-mtls","token_type":"Bearer","expires_in":60}`)
	}))
	srv.TLS = tlsCfg
	srv.StartTLS()
	defer srv.Close()
	cfg := oauthConfig(srv.URL+"/token", map[string]string{"auth_method": "tls_client_auth"}, nil)
	cfg.CACert, cfg.TLSClientCert, cfg.TLSClientKey = string(serverCA.CertPEM), string(leaf.CertPEM), string(leaf.KeyPEM)
	tok, err := fetch(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at-mtls" || cn != "partner" || got.Get("client_id") != "bank client:1" || got.Has("client_secret") {
		t.Errorf("token %v, cn %q, form %v", tok, cn, got)
	}
}

func TestOAuth2ErrorShape(t *testing.T) {
	ts := newTokenServer(t)
	ts.answer = func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "Client authentication failed"})
	}
	_, err := fetch(t, oauthConfig(ts.tokenAt, nil, map[string]string{"client_secret": oauthSecret}), nil)
	var ue *bank.UpstreamError
	if !errors.As(err, &ue) || err.Error() != "oauth2 token request failed: HTTP 401: bank code invalid_client: Client authentication failed" {
		t.Fatalf("error %v", err)
	}
}

func TestOAuth2ValidationNamesTheField(t *testing.T) {
	ca, _ := testpki.NewCA("keys")
	small, _ := ca.Client("small", 1024)
	ec, _ := ca.Client("ec", 0)
	secret := map[string]string{"client_secret": "s"}
	cases := []struct {
		name     string
		settings map[string]string
		secrets  map[string]string
		tokenURL string
		field    string
	}{
		{"no token_url", nil, secret, "", "token_url"},
		{"relative token_url", nil, secret, "/token", "token_url"},
		{"http token_url", nil, secret, "http://bank.example/token", "token_url"},
		{"basic without secret", nil, nil, "", "client_secret"},
		{"post without secret", map[string]string{"auth_method": "client_secret_post"}, nil, "", "client_secret"},
		{"bad method", map[string]string{"auth_method": "client_secret_jwt"}, secret, "", "auth_method"},
		{"bad encoding", map[string]string{"basic_encoding": "url"}, secret, "", "basic_encoding"},
		{"jwt without key", map[string]string{"auth_method": "private_key_jwt"}, nil, "", "private_key"},
		{"jwt short RSA key", map[string]string{"auth_method": "private_key_jwt"}, map[string]string{"private_key": string(small.KeyPEM)}, "", "private_key"},
		{"jwt EC key RS256", map[string]string{"auth_method": "private_key_jwt", "signing_alg": "RS256"}, map[string]string{"private_key": string(ec.KeyPEM)}, "", "signing_alg"},
		{"jwt HS256", map[string]string{"auth_method": "private_key_jwt", "signing_alg": "HS256"}, map[string]string{"private_key": string(ec.KeyPEM)}, "", "signing_alg"},
		{"tls without cert", map[string]string{"auth_method": "tls_client_auth"}, nil, "", "tls_client_cert"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := "https://bank.example/oauth2/token"
			if tc.name == "no token_url" {
				u = ""
			} else if tc.tokenURL != "" {
				u = tc.tokenURL
			}
			cfg := oauthConfig(u, tc.settings, tc.secrets)
			if u == "" {
				delete(cfg.Settings, "token_url")
			}
			var fe *bank.FieldError
			if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate() = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
	cfg := oauthConfig("https://bank.example/token", nil, secret)
	cfg.BaseURL = "https://bank.example"
	var fe *bank.FieldError
	if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != "base_url" {
		t.Fatalf("base_url on oauth2: %v", err)
	}
}
