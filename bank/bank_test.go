package bank_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// newEmu starts an emulator over real HTTP on loopback.
func newEmu(t testing.TB) (*emulator.Server, string) {
	t.Helper()
	emu := emulator.New(emulator.Options{})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv.URL
}

// configFor builds the config that points provider at the emulator.
func configFor(t testing.TB, provider, baseURL string) *bank.Config {
	t.Helper()
	cfg := &bank.Config{Provider: provider, BaseURL: baseURL, Settings: map[string]string{}, Secrets: map[string]string{}}
	p, _ := bank.Lookup(provider)
	secret := map[string]bool{}
	for _, f := range p.Fields() {
		secret[f.Name] = f.Secret
	}
	for k, v := range emulator.ConfigData(provider, baseURL, emulator.DefaultCredentials()) {
		switch k {
		case "provider", "base_url":
		default:
			if secret[k] {
				cfg.Secrets[k] = v.(string)
			} else {
				cfg.Settings[k] = v.(string)
			}
		}
	}
	return cfg
}

func fetch(t *testing.T, cfg *bank.Config, prev *bank.Token) (*bank.Token, error) {
	t.Helper()
	c, err := bank.NewClient(cfg, nil, loopback)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close()
	return c.Fetch(context.Background(), prev)
}

func TestFetchEachProvider(t *testing.T) {
	for _, provider := range emulator.Providers {
		t.Run(provider, func(t *testing.T) {
			emu, url := newEmu(t)
			emu.SetTTL(provider, 90*time.Second)
			before := time.Now()
			tok, err := fetch(t, configFor(t, provider, url), nil)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if !emu.TokenValid(provider, tok.AccessToken) {
				t.Fatalf("emulator does not know the token")
			}
			if life := tok.ExpiresAt.Sub(before); life < 89*time.Second || life > 91*time.Second {
				t.Errorf("lifetime %s, want about 90s", life)
			}
			if !strings.EqualFold(tok.TokenType, "bearer") {
				t.Errorf("token_type %q", tok.TokenType)
			}
			if st := emu.Stats(provider); st.Logins != 1 || st.Failed != 0 {
				t.Errorf("stats %+v, want one login", st)
			}
		})
	}
}

func TestIsbankWireShape(t *testing.T) {
	emu, url := newEmu(t)
	cfg := configFor(t, emulator.Isbank, url)
	cfg.Settings["scope"] = "read:accounts"
	tok, err := fetch(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Scope != "read:accounts" || tok.RefreshToken == "" {
		t.Errorf("scope %q refresh set %t", tok.Scope, tok.RefreshToken != "")
	}
	last, _ := emu.LastRequest(emulator.Isbank)
	if last.Method != http.MethodGet || last.Path != emulator.IsbankTokenPath {
		t.Errorf("token step %s %s", last.Method, last.Path)
	}
	if !strings.HasPrefix(string(last.Body), "grant_type=authorization_code&code=") &&
		!strings.HasPrefix(string(last.Body), "code=") {
		t.Errorf("token body %q", last.Body)
	}
	if emu.Stats(emulator.Isbank).Codes != 1 {
		t.Errorf("want one code request")
	}
}

func TestRakbankWireShape(t *testing.T) {
	emu, url := newEmu(t)
	cfg := configFor(t, emulator.Rakbank, url)
	cfg.OAuthMetadata = map[string]any{"account_id": "0188000049916"}
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		if _, err := fetch(t, cfg, nil); err != nil {
			t.Fatal(err)
		}
		last, _ := emu.LastRequest(emulator.Rakbank)
		id := last.Header.Get("MsgId")
		if len(id) != 36 || seen[id] {
			t.Errorf("MsgId %q not a fresh UUID", id)
		}
		seen[id] = true
		var body map[string]any
		if err := json.Unmarshal(last.Body, &body); err != nil {
			t.Fatal(err)
		}
		if len(body) != 3 || body["grant_type"] != "client_credentials" || body["scope"] != "accounts" {
			t.Errorf("body %s", last.Body)
		}
		if md, _ := body["oauth_metadata"].(map[string]any); md["account_id"] != "0188000049916" {
			t.Errorf("oauth_metadata %v", body["oauth_metadata"])
		}
	}
}

func TestAccelerationCloudQueryAndBasic(t *testing.T) {
	emu, url := newEmu(t)
	if _, err := fetch(t, configFor(t, emulator.AccelerationCloud, url), nil); err != nil {
		t.Fatal(err)
	}
	last, _ := emu.LastRequest(emulator.AccelerationCloud)
	if last.Method != http.MethodPost || last.RawQuery != "grant_type=client_credentials&user_id=user-42" {
		t.Errorf("request %s ?%s", last.Method, last.RawQuery)
	}
}

func TestEtranzactRefreshThenRelogin(t *testing.T) {
	emu, url := newEmu(t)
	cfg := configFor(t, emulator.Etranzact, url)
	first, err := fetch(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := fetch(t, cfg, first)
	if err != nil {
		t.Fatal(err)
	}
	if st := emu.Stats(emulator.Etranzact); st.Logins != 1 || st.Refreshes != 1 {
		t.Fatalf("stats %+v, want 1 login then 1 refresh", st)
	}
	// The refresh token is single-use: reusing it is rejected, and the
	// client logs in again, once.
	if _, err := fetch(t, cfg, first); err != nil {
		t.Fatal(err)
	}
	if st := emu.Stats(emulator.Etranzact); st.Logins != 2 || st.Refreshes != 1 || st.Failed != 1 {
		t.Fatalf("stats %+v, want a rejected refresh then a second login", st)
	}
	if second.AccessToken == first.AccessToken {
		t.Error("refresh returned the same access token")
	}
}

func TestUpstreamErrorsNameTheBankAnswer(t *testing.T) {
	creds := emulator.DefaultCredentials()
	cases := []struct {
		provider string
		fail     emulator.Failure
		want     []string
	}{
		{emulator.Rakbank, emulator.Failure{Status: 401}, []string{"rakbank token request failed", "HTTP 401", "bank code"}},
		{emulator.Rakbank, emulator.Failure{Status: 503, Body: `{"status":"503","response_code":"ESB-503","response_message":"Backend down","description":"try later"}`},
			[]string{"HTTP 503", "bank code ESB-503", "Backend down", "try later"}},
		{emulator.AccelerationCloud, emulator.Failure{Status: 200, Body: `{"code":400,"errorMessage":"authentication failed","error":null,"data":null}`},
			[]string{"HTTP 200", "bank code 400", "authentication failed"}},
		{emulator.Etranzact, emulator.Failure{Status: 502, Body: "<html><body>Bad gateway " + creds.Password + "</body></html>"},
			[]string{"HTTP 502", "non-JSON response (HTML page)"}},
		{emulator.Etranzact, emulator.Failure{Status: 200, Body: `{"token_type":"bearer","expires_in":60}`}, []string{"no access_token"}},
		{emulator.Etranzact, emulator.Failure{Status: 200, Body: `{"access_token":"x","expires_in":"60"}`}, []string{"expires_in: must be a number"}},
		{emulator.Etranzact, emulator.Failure{Status: 200, Body: `{"access_token":"x","expires_in":-5}`}, []string{"expires_in: must be a positive"}},
		{emulator.Etranzact, emulator.Failure{Status: 200, Body: `{"access_token":"x","expires_in":60`}, []string{"non-JSON"}},
		{emulator.Etranzact, emulator.Failure{Status: 200, Body: `{"access_token":"x"}`}, []string{"no expires_in"}},
		{emulator.Etranzact, emulator.Failure{Status: 200, Body: strings.Repeat(" ", bank.MaxBodySize+10)}, []string{"larger than"}},
		{emulator.Isbank, emulator.Failure{Status: 401, Body: `{"httpCode":"401","httpMessage":"Unauthorized","moreInformation":"Invalid client id or secret"}`},
			[]string{"isbank code request failed", "HTTP 401", "bank code 401", "Unauthorized"}},
		{emulator.Etranzact, emulator.Failure{Status: 302, Header: http.Header{"Location": {"https://elsewhere.example/"}}}, []string{"redirect not followed"}},
	}
	for _, tc := range cases {
		t.Run(tc.provider+"/"+tc.want[len(tc.want)-1], func(t *testing.T) {
			emu, url := newEmu(t)
			emu.FailNext(tc.provider, -1, tc.fail)
			_, err := fetch(t, configFor(t, tc.provider, url), nil)
			// A transient failure (502, 503) is tried MaxAttempts times, others once.
			want := 1
			if tc.fail.Status == 502 || tc.fail.Status == 503 {
				want = bank.MaxAttempts
			}
			if emu.Stats(tc.provider).Total != want {
				t.Errorf("%d bank requests, want %d", emu.Stats(tc.provider).Total, want)
			}
			var ue *bank.UpstreamError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T), want *UpstreamError", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, s := range creds.Secrets() {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error leaks a secret: %q", err)
				}
			}
		})
	}
}

func TestTransportErrors(t *testing.T) {
	// A closed port: connection refused, no secret, names the provider.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := fetch(t, configFor(t, emulator.Rakbank, url), nil)
	if err == nil || !strings.Contains(err.Error(), "rakbank token request failed") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error %v", err)
	}
	// A bank slower than the timeout.
	emu, url := newEmu(t)
	emu.SetLatency(emulator.Etranzact, 3*time.Second)
	cfg := configFor(t, emulator.Etranzact, url)
	cfg.Timeout = time.Second
	start := time.Now()
	_, err = fetch(t, cfg, nil)
	if err == nil || time.Since(start) > 2500*time.Millisecond {
		t.Fatalf("error %v after %s, want a timeout near 1s", err, time.Since(start))
	}
}

func TestJWTExpiryFallback(t *testing.T) {
	emu, url := newEmu(t)
	exp := time.Now().Add(10 * time.Minute).Unix()
	payload := strings.TrimRight(b64(`{"exp":`+itoa(exp)+`}`), "=")
	emu.FailNext(emulator.AccelerationCloud, 1, emulator.Failure{Status: 200,
		Body: `{"access_token":"eyJhbGciOiJub25lIn0.` + payload + `.sig","token_type":"bearer"}`})
	tok, err := fetch(t, configFor(t, emulator.AccelerationCloud, url), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresAt.Unix() != exp {
		t.Errorf("expires_at %v, want the JWT exp %d", tok.ExpiresAt, exp)
	}
}

func TestFreshness(t *testing.T) {
	now := time.Now()
	tok := &bank.Token{ObtainedAt: now, ExpiresAt: now.Add(60 * time.Second)}
	if !tok.FreshAt(now.Add(47 * time.Second)) {
		t.Error("a 60s token should be served at 47s")
	}
	// Vault Agent re-reads at 85-95% of the lease: the token must be stale then.
	if tok.FreshAt(now.Add(51 * time.Second)) {
		t.Error("a 60s token must not be served at 51s (85% of its life)")
	}
	var none *bank.Token
	if none.FreshAt(now) {
		t.Error("nil token is never fresh")
	}
	if s := tok.String() + (bank.Token{AccessToken: "sekrit", RefreshToken: "sekrit2"}).GoString(); strings.Contains(s, "sekrit") {
		t.Errorf("Token formats its secrets: %s", s)
	}
}
