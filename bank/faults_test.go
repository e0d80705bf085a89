package bank_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

func TestTransientFailuresAreRetried(t *testing.T) {
	emu, url := newEmu(t)
	emu.FailNext(emulator.Rakbank, 2, emulator.Failure{Status: 503})
	tok, err := fetch(t, configFor(t, emulator.Rakbank, url), nil)
	if err != nil || !emu.TokenValid(emulator.Rakbank, tok.AccessToken) {
		t.Fatalf("fetch after two 503s: %v", err)
	}
	if st := emu.Stats(emulator.Rakbank); st.Total != 3 || st.Failed != 2 {
		t.Fatalf("stats %+v, want 2 failures then a success", st)
	}
	// Bounded: a bank that keeps failing gets MaxAttempts requests.
	emu.Reset()
	emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 504})
	if _, err := fetch(t, configFor(t, emulator.Rakbank, url), nil); err == nil || !strings.Contains(err.Error(), "HTTP 504") {
		t.Fatalf("error %v", err)
	}
	if n := emu.Stats(emulator.Rakbank).Total; n != bank.MaxAttempts {
		t.Fatalf("%d requests, want %d", n, bank.MaxAttempts)
	}
}

func TestOtherFailuresAreNotRetried(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 500, 501} {
		emu, url := newEmu(t)
		emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: status})
		if _, err := fetch(t, configFor(t, emulator.Rakbank, url), nil); err == nil {
			t.Fatalf("%d: no error", status)
		}
		if n := emu.Stats(emulator.Rakbank).Total; n != 1 {
			t.Errorf("HTTP %d: %d requests, want 1 (no retry)", status, n)
		}
	}
}

func TestConnectionErrorsAreRetried(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close() // no answer at all
		}
	}))
	defer srv.Close()
	_, err := fetch(t, configFor(t, emulator.Rakbank, srv.URL), nil)
	if err == nil || !strings.Contains(err.Error(), "rakbank token request failed") {
		t.Fatalf("error %v", err)
	}
	if n := conns.Load(); n != bank.MaxAttempts {
		t.Fatalf("%d requests, want %d", n, bank.MaxAttempts)
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	emu, url := newEmu(t)
	emu.FailNext(emulator.AccelerationCloud, 1, emulator.Failure{Status: 429,
		Header: http.Header{"X-Ratelimit-Retry-After": {"1"}}})
	start := time.Now()
	if _, err := fetch(t, configFor(t, emulator.AccelerationCloud, url), nil); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("retried after %s, the bank asked for 1s", waited)
	}
	if n := emu.Stats(emulator.AccelerationCloud).Total; n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}

	// A wait longer than the timeout fails at once, saying when to retry.
	emu.FailNext(emulator.Rakbank, 1, emulator.Failure{Status: 429, Header: http.Header{"Retry-After": {"120"}}})
	cfg := configFor(t, emulator.Rakbank, url)
	cfg.Timeout = 5 * time.Second
	start = time.Now()
	_, err := fetch(t, cfg, nil)
	var ue *bank.UpstreamError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "HTTP 429") || !strings.Contains(err.Error(), "retry after") {
		t.Fatalf("error %v", err)
	}
	if d := ue.RetryAt.Sub(start); d < 119*time.Second || d > 121*time.Second || time.Since(start) > time.Second {
		t.Fatalf("retry at +%s, failed after %s; want +120s and at once", d, time.Since(start))
	}
	if n := emu.Stats(emulator.Rakbank).Total; n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestIsbankRetryStartsOverWithANewCode(t *testing.T) {
	emu, url := newEmu(t)
	// The code step succeeds; make the token step fail once with a 502.
	emu.FailNext(emulator.Isbank, 1, emulator.Failure{Status: 502})
	if _, err := fetch(t, configFor(t, emulator.Isbank, url), nil); err != nil {
		t.Fatal(err) // a 502 at the code step, then both steps again
	}
	st := emu.Stats(emulator.Isbank)
	if st.Codes != 1 || st.Total != 3 {
		t.Fatalf("stats %+v", st)
	}
	// A gateway 502 after the bank used up the code and issued a token: the
	// retry must start over with a new code, not resend the used one.
	emu.Reset()
	emu.FailNext(emulator.Isbank, 1, emulator.Failure{Status: 502, Path: emulator.IsbankTokenPath, Consume: true})
	tok, err := fetch(t, configFor(t, emulator.Isbank, url), nil)
	if err != nil || !emu.TokenValid(emulator.Isbank, tok.AccessToken) {
		t.Fatalf("fetch: %v", err)
	}
	if st := emu.Stats(emulator.Isbank); st.Codes != 2 || st.Logins != 2 || st.Failed != 1 || st.Total != 4 {
		t.Fatalf("stats %+v, want code, token (502 after use), then a new code and token", st)
	}
}

func TestRejectedRefreshLogsInOnceNotInALoop(t *testing.T) {
	emu, url := newEmu(t)
	cfg := configFor(t, emulator.Etranzact, url)
	first, err := fetch(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every request now rejected: one refresh attempt, one login, then stop.
	emu.FailNext(emulator.Etranzact, -1, emulator.Failure{Status: 401})
	if _, err := fetch(t, cfg, first); err == nil || !strings.Contains(err.Error(), "etranzact token request failed: HTTP 401") {
		t.Fatalf("error %v, want the login's 401", err)
	}
	if st := emu.Stats(emulator.Etranzact); st.Total != 3 || st.Failed != 2 {
		t.Fatalf("stats %+v, want 1 login, then 1 refresh and 1 login rejected", st)
	}
	// A refresh that fails transiently is retried, not turned into a login.
	emu.Reset()
	first, _ = fetch(t, cfg, nil)
	emu.FailNext(emulator.Etranzact, 1, emulator.Failure{Status: 503, Path: emulator.EtranzactTokenPath})
	if _, err := fetch(t, cfg, first); err != nil {
		t.Fatal(err)
	}
	if st := emu.Stats(emulator.Etranzact); st.Logins != 1 || st.Refreshes != 1 || st.Failed != 1 {
		t.Fatalf("stats %+v, want login, 503, refresh", st)
	}
}

func TestRequestBudgetIsNeverExceeded(t *testing.T) {
	emu, url := newEmu(t)
	cfg := configFor(t, emulator.AccelerationCloud, url)
	two := 2
	cfg.MaxRequestsPerMinute = &two
	c, err := bank.NewClient(cfg, nil, loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetBudget(bank.NewBudget(nil))
	for i := 0; i < 2; i++ {
		if _, err := c.Fetch(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Fetch(t.Context(), nil)
	var be *bank.BudgetError
	if !errors.As(err, &be) || be.Window != "minute" || time.Until(be.RetryAt) < 55*time.Second ||
		!strings.Contains(err.Error(), "max_requests_per_minute=2") {
		t.Fatalf("error %v, want a spent minute budget", err)
	}
	if n := emu.Stats(emulator.AccelerationCloud).Total; n != 2 {
		t.Fatalf("%d bank requests, want 2", n)
	}
	// Retries count too: a 503 then a spent budget stops with the 503.
	emu.Reset()
	one := 1
	cfg.MaxRequestsPerMinute = &one
	c2, _ := bank.NewClient(cfg, nil, loopback)
	defer c2.Close()
	c2.SetBudget(bank.NewBudget(nil))
	emu.FailNext(emulator.AccelerationCloud, 1, emulator.Failure{Status: 503})
	if _, err := c2.Fetch(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("error %v, want the 503", err)
	}
	if n := emu.Stats(emulator.AccelerationCloud).Total; n != 1 {
		t.Fatalf("%d bank requests, want 1", n)
	}
}

func TestAccelerationCloudDefaultBudget(t *testing.T) {
	cfg := &bank.Config{Provider: emulator.AccelerationCloud}
	if l := cfg.EffectiveLimits(); l.PerMinute != 10 || l.PerDay != 60 {
		t.Fatalf("limits %+v, want 10/minute 60/day", l)
	}
	zero := 0
	cfg.MaxRequestsPerDay = &zero
	if l := cfg.EffectiveLimits(); l.PerMinute != 10 || l.PerDay != 0 {
		t.Fatalf("override: %+v", l)
	}
	if l := (&bank.Config{Provider: emulator.Rakbank}).EffectiveLimits(); !l.None() {
		t.Fatalf("rakbank limits %+v, want none", l)
	}
}

func TestDefaultLifetimeWhenTheAnswerHasNoExpiry(t *testing.T) {
	emu, url := newEmu(t)
	cfg := configFor(t, emulator.Etranzact, url)
	opaque := emulator.Failure{Status: 200, Body: `{"access_token":"opaque-token","token_type":"bearer"}`}
	emu.FailNext(emulator.Etranzact, 1, opaque)
	if _, err := fetch(t, cfg, nil); err == nil || !strings.Contains(err.Error(), "default_lifetime") {
		t.Fatalf("without default_lifetime: %v", err)
	}
	cfg.DefaultLifetime = 10 * time.Minute
	emu.FailNext(emulator.Etranzact, 1, opaque)
	start := time.Now()
	tok, err := fetch(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if life := tok.ExpiresAt.Sub(start); life < 599*time.Second || life > 601*time.Second {
		t.Fatalf("lifetime %s, want 10m", life)
	}
	// A JWT exp wins over the default.
	exp := time.Now().Add(3 * time.Minute).Unix()
	payload := strings.TrimRight(b64(`{"exp":`+itoa(exp)+`}`), "=")
	emu.FailNext(emulator.Etranzact, 1, emulator.Failure{Status: 200, Body: `{"access_token":"eyJhbGciOiJub25lIn0.` + payload + `.sig"}`})
	if tok, err = fetch(t, cfg, nil); err != nil || tok.ExpiresAt.Unix() != exp {
		t.Fatalf("JWT exp not used: %v %v", tok, err)
	}
}

func TestBadUpstreamBodies(t *testing.T) {
	creds := emulator.DefaultCredentials()
	cases := []struct {
		name string
		fail emulator.Failure
		want string
	}{
		{"html", emulator.Failure{Status: 200, Body: "<!DOCTYPE html><html><body>Login " + creds.Password + "</body></html>"}, "HTML page"},
		{"truncated", emulator.Failure{Status: 200, Body: `{"access_token":"abc","expires_in":6`}, "non-JSON"},
		{"10MB", emulator.Failure{Status: 200, Body: `{"access_token":"`, BodyBytes: 10 << 20}, "larger than 1048576 bytes"},
		{"no access_token", emulator.Failure{Status: 200, Body: `{"expires_in":60}`}, "no access_token"},
		{"negative expires_in", emulator.Failure{Status: 200, Body: `{"access_token":"a","expires_in":-60}`}, "expires_in: must be a positive"},
		{"string expires_in", emulator.Failure{Status: 200, Body: `{"access_token":"a","expires_in":"60"}`}, "expires_in: must be a number"},
		{"slow-loris", emulator.Failure{Status: 200, Body: `{"access_token":"abcdefghijklmnopqrstuvwxyz","expires_in":60}`, Dribble: 200 * time.Millisecond}, "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			emu, url := newEmu(t)
			emu.FailNext(emulator.Rakbank, 1, tc.fail)
			cfg := configFor(t, emulator.Rakbank, url)
			cfg.Timeout = 2 * time.Second
			start := time.Now()
			_, err := fetch(t, cfg, nil)
			var ue *bank.UpstreamError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rakbank token request failed") {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("fetch took %s with a 2s timeout", d)
			}
			for _, s := range creds.Secrets() {
				if strings.Contains(err.Error(), s) {
					t.Fatal("error leaks a secret")
				}
			}
			if n := emu.Stats(emulator.Rakbank).Total; n != 1 {
				t.Fatalf("%d requests: a bad body must not be retried", n)
			}
		})
	}
}

func TestDayBudgetRemembersEarlierRequests(t *testing.T) {
	emu, url := newEmu(t)
	cfg := configFor(t, emulator.AccelerationCloud, url)
	// 60 requests over the last 23 hours, as a restored budget would hold.
	var sent []time.Time
	oldest := time.Now().Add(-23 * time.Hour)
	for i := 0; i < 60; i++ {
		sent = append(sent, oldest.Add(time.Duration(i)*time.Minute))
	}
	c, _ := bank.NewClient(cfg, nil, loopback)
	defer c.Close()
	c.SetBudget(bank.NewBudget(sent))
	_, err := c.Fetch(t.Context(), nil)
	var be *bank.BudgetError
	if !errors.As(err, &be) || be.Window != "day" || !be.RetryAt.Equal(oldest.Add(24*time.Hour)) {
		t.Fatalf("error %v, want the day budget spent until the oldest request is 24h old", err)
	}
	if n := emu.Stats(emulator.AccelerationCloud).Total; n != 0 {
		t.Fatalf("%d bank requests, want none", n)
	}
}

func TestIsbankNeedsBudgetForBothSteps(t *testing.T) {
	emu, url := newEmu(t)
	cfg := configFor(t, emulator.Isbank, url)
	three := 3
	cfg.MaxRequestsPerMinute = &three
	c, _ := bank.NewClient(cfg, nil, loopback)
	defer c.Close()
	c.SetBudget(bank.NewBudget(nil))
	if _, err := c.Fetch(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	// One request left: not enough for a code and a token, so no code is asked for.
	_, err := c.Fetch(t.Context(), nil)
	var be *bank.BudgetError
	if !errors.As(err, &be) {
		t.Fatalf("error %v, want a spent budget", err)
	}
	if st := emu.Stats(emulator.Isbank); st.Codes != 1 || st.Total != 2 {
		t.Fatalf("stats %+v, want one code and one token request", st)
	}
}

func TestRefreshLostToAGatewayFailureEndsInOneLogin(t *testing.T) {
	emu, url := newEmu(t)
	cfg := configFor(t, emulator.Etranzact, url)
	first, err := fetch(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The bank rotates the refresh token, then its gateway answers 502: the
	// retry presents the used refresh token, is rejected, and logs in once.
	emu.FailNext(emulator.Etranzact, 1, emulator.Failure{Status: 502, Consume: true})
	tok, err := fetch(t, cfg, first)
	if err != nil || !emu.TokenValid(emulator.Etranzact, tok.AccessToken) {
		t.Fatalf("fetch: %v", err)
	}
	if st := emu.Stats(emulator.Etranzact); st.Logins != 2 || st.Refreshes != 1 || st.Failed != 2 || st.Total != 4 {
		t.Fatalf("stats %+v, want login; refresh (502 after rotating), refresh rejected, login", st)
	}
}
