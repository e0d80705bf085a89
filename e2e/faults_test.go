//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
	"github.com/hashicorp/vault/api"
)

// These tests prove the fault matrix in docs/faults.md: each one injects a
// fault with the emulator and counts the bank requests it cost.

// noRetryClient is the server's API client without the client's own retries
// (vault/api retries 5xx and 429 twice), so that one call is one read.
func noRetryClient(t *testing.T, b *bankMount) *api.Client {
	t.Helper()
	c, err := b.srv.Client.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(b.srv.Client.Token())
	c.SetMaxRetries(0)
	return c
}

// read reads <mount>/token/<name> once; it returns the secret or the error.
func read(c *api.Client, b *bankMount, name string) (*api.Secret, error) {
	sec, err := c.Logical().Read(b.mount + "/token/" + name)
	if err == nil && sec != nil {
		seen.add(sec.Data["access_token"])
	}
	return sec, err
}

func noSecret(t *testing.T, s string) {
	t.Helper()
	for _, secret := range emulator.DefaultCredentials().Secrets() {
		if strings.Contains(s, secret) {
			t.Errorf("a secret appears in %q", s)
		}
	}
}

func TestFaultBackgroundRefresh(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.emu.SetTTL(emulator.Etranzact, 10*time.Second) // stale at 8s, renewed at 7s
	b.configure(t, "etz", emulator.Etranzact)
	first := b.readToken(t, "etz")["access_token"]
	deadline := time.Now().Add(20 * time.Second)
	for b.emu.Stats(emulator.Etranzact).Refreshes < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no background refresh: %+v", b.emu.Stats(emulator.Etranzact))
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := b.emu.Stats(emulator.Etranzact)
	// The bank counts the refresh when it answers; the plugin hands the new
	// token out once it has stored it, a moment later. Until then (the old
	// token is fresh for another second) reads get the old one.
	var second any
	for settle := time.Now().Add(900 * time.Millisecond); ; time.Sleep(50 * time.Millisecond) {
		start := time.Now()
		second = b.readToken(t, "etz")["access_token"]
		t.Logf("read after the background refresh took %s", time.Since(start))
		if second != first || time.Now().After(settle) {
			break
		}
	}
	if second == first || !b.emu.TokenValid(emulator.Etranzact, second.(string)) {
		t.Fatal("the read after the background refresh did not get the new token")
	}
	if after := b.emu.Stats(emulator.Etranzact); after.Total != before.Total || after.Logins != 1 {
		t.Fatalf("stats %+v, want the read served without a bank request", after)
	}
}

func TestFaultIdleTokenIsNotRefreshed(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.emu.SetTTL(emulator.Rakbank, 10*time.Second)
	b.configure(t, "rak", emulator.Rakbank, "background_refresh_idle=2")
	b.readToken(t, "rak")
	time.Sleep(11 * time.Second) // past the refresh point and the expiry, unread
	if st := b.emu.Stats(emulator.Rakbank); st.Total != 1 {
		t.Fatalf("%d bank requests for a token read once, want 1", st.Total)
	}
}

func TestFaultServeWhileValid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		inject func(emu *emulator.Server, hs *httptest.Server)
		want   string // in the warning and the error
		cost   int    // bank requests the failing fetch costs (requests the emulator saw)
	}{
		{"503", func(emu *emulator.Server, _ *httptest.Server) {
			emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 503,
				Body: `{"status":"503","response_code":"ESB-503","response_message":"Backend down","description":"maintenance"}`})
		}, "ESB-503", 3},
		{"connection refused", func(_ *emulator.Server, hs *httptest.Server) { hs.Close() }, "refused", 0},
		{"timeout", func(emu *emulator.Server, _ *httptest.Server) { emu.SetLatency(emulator.Rakbank, 10*time.Second) }, "timed out", 1},
		{"malformed body", func(emu *emulator.Server, _ *httptest.Server) {
			emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 200, Body: `{"access_token":"abc","expires_in":`})
		}, "non-JSON", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			emu := emulator.New(emulator.Options{})
			emu.SetTTL(emulator.Rakbank, 20*time.Second) // stale at 16s: 4s of serve-while-valid
			hs := httptest.NewServer(emu)
			defer hs.Close()
			b := &bankMount{emu: emu, url: hs.URL, mount: fmt.Sprintf("bankauth-%d", mountSeq.Add(1)), srv: vault}
			if err := vault.Mount("bankauth", b.mount); err != nil {
				t.Fatal(err)
			}
			b.configure(t, "rak", emulator.Rakbank, "background_refresh_idle=0", "timeout=2")
			c := noRetryClient(t, b)
			first := b.readToken(t, "rak")["access_token"]
			time.Sleep(16200 * time.Millisecond)
			tc.inject(emu, hs)

			sec, err := read(c, b, "rak")
			if err != nil {
				t.Fatalf("stale read while the bank fails: %v", err)
			}
			if sec.Data["access_token"] != first || len(sec.Warnings) != 1 || !strings.Contains(sec.Warnings[0], tc.want) ||
				!strings.Contains(sec.Warnings[0], "serving the cached token") {
				t.Fatalf("same token %t, warnings %q", sec.Data["access_token"] == first, sec.Warnings)
			}
			noSecret(t, sec.Warnings[0])
			if sec.LeaseDuration <= 0 || sec.LeaseDuration > 4 {
				t.Errorf("lease %ds, want the token's remaining life", sec.LeaseDuration)
			}
			if n := emu.Stats(emulator.Rakbank).Total; n != 1+tc.cost {
				t.Errorf("%d bank requests, want %d", n, 1+tc.cost)
			}
			// Backing off: more reads do not ask the bank.
			for i := 0; i < 5; i++ {
				if sec, err = read(c, b, "rak"); err != nil || sec.Data["access_token"] != first {
					t.Fatalf("read %d while backing off: %v", i, err)
				}
			}
			if n := emu.Stats(emulator.Rakbank).Total; n != 1+tc.cost {
				t.Errorf("%d bank requests after 5 more reads, want %d", n, 1+tc.cost)
			}
			// Expired: a 502 naming the provider and the failure.
			time.Sleep(4 * time.Second)
			_, err = read(c, b, "rak")
			if err == nil || contains(err.Error(), "Code: 502", "rakbank", tc.want) != nil {
				t.Fatalf("read of an expired token: %v", err)
			}
			noSecret(t, err.Error())
		})
	}
}

func TestFaultRetries(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	for _, p := range []string{emulator.Rakbank, emulator.AccelerationCloud, emulator.Isbank} {
		b.configure(t, p, p)
	}
	c := noRetryClient(t, b)

	// Two 503s, then the token: one read, three bank requests.
	b.emu.FailNext(emulator.Rakbank, 2, emulator.Failure{Status: 503})
	if _, err := read(c, b, emulator.Rakbank); err != nil {
		t.Fatal(err)
	}
	if n := b.emu.Stats(emulator.Rakbank).Total; n != 3 {
		t.Errorf("rakbank: %d requests, want 3", n)
	}

	// Acceleration Cloud's 429 with X-RateLimit-Retry-After: 1 is waited out.
	b.emu.FailNext(emulator.AccelerationCloud, 1, emulator.Failure{Status: 429,
		Header: http.Header{"X-Ratelimit-Retry-After": {"1"}}})
	start := time.Now()
	if _, err := read(c, b, emulator.AccelerationCloud); err != nil {
		t.Fatal(err)
	}
	if d, n := time.Since(start), b.emu.Stats(emulator.AccelerationCloud).Total; d < 900*time.Millisecond || n != 2 {
		t.Errorf("accelerationcloud: %d requests in %s, want 2 after waiting 1s", n, d)
	}

	// A 429 asking for more than the timeout allows fails at once and says when.
	b.emu.FailNext(emulator.Rakbank, 1, emulator.Failure{Status: 429, Header: http.Header{"Retry-After": {"300"}}})
	if _, err := b.srv.MustCLI("write", "-f", b.mount+"/token/"+emulator.Rakbank); err == nil ||
		contains(err.Error(), "HTTP 429", "retry after") != nil {
		t.Fatalf("429 Retry-After 300: %v", err)
	}
	// ...and bankauth does not ask again before then, whatever the readers do.
	for i := 0; i < 3; i++ {
		read(c, b, emulator.Rakbank)
	}
	if n := b.emu.Stats(emulator.Rakbank).Total; n != 4 {
		t.Errorf("rakbank: %d requests, want 4 (none after the 429)", n)
	}

	// İşbank: a 502 after the bank used the code starts over with a new code.
	b.emu.FailNext(emulator.Isbank, 1, emulator.Failure{Status: 502, Path: emulator.IsbankTokenPath, Consume: true})
	if _, err := read(c, b, emulator.Isbank); err != nil {
		t.Fatal(err)
	}
	if st := b.emu.Stats(emulator.Isbank); st.Codes != 2 || st.Total != 4 {
		t.Errorf("isbank stats %+v, want code, token (502), code, token", st)
	}

	// A 401 is not retried.
	b.configure(t, "rak2", emulator.Rakbank)
	before := b.emu.Stats(emulator.Rakbank).Total
	b.emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 401})
	if _, err := read(c, b, "rak2"); err == nil {
		t.Fatal("read succeeded despite a 401")
	}
	b.emu.ClearFailures()
	if n := b.emu.Stats(emulator.Rakbank).Total - before; n != 1 {
		t.Errorf("a 401 cost %d requests, want 1", n)
	}
}

func TestFaultRequestBudget(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "ac", emulator.AccelerationCloud)
	out, err := b.srv.MustCLI("read", "-format=json", b.mount+"/config/ac")
	if err != nil || contains(out, `"max_requests_per_minute": 10`, `"max_requests_per_day": 60`) != nil {
		t.Fatalf("config read: %v %s", err, out)
	}
	c := noRetryClient(t, b)
	// 20 goroutines force refreshes as fast as they can for 3 seconds.
	var wg sync.WaitGroup
	var mu sync.Mutex
	spent, calls := 0, 0
	stop := time.Now().Add(3 * time.Second)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				_, err := c.Logical().Write(b.mount+"/token/ac", nil)
				mu.Lock()
				calls++
				if err != nil && strings.Contains(err.Error(), "request budget spent") {
					spent++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("20 writers, 3s: %d forced refreshes, %d told the budget is spent, %d bank requests",
		calls, spent, b.emu.Stats(emulator.AccelerationCloud).Total)
	if n := b.emu.Stats(emulator.AccelerationCloud).Total; n != 10 {
		t.Fatalf("%d bank requests in 3s under load, want exactly the budget of 10", n)
	}
	if spent == 0 {
		t.Fatal("no caller was told the budget is spent")
	}
	_, err = c.Logical().Write(b.mount+"/token/ac", nil)
	if err == nil || contains(err.Error(), "Code: 429", "accelerationcloud request budget spent", "max_requests_per_minute=10") != nil {
		t.Fatalf("forced refresh past the budget: %v", err)
	}
	// Readers still get the last token: it is fresh.
	if _, err := read(c, b, "ac"); err != nil {
		t.Fatalf("read with the budget spent: %v", err)
	}
	if n := b.emu.Stats(emulator.AccelerationCloud).Total; n != 10 {
		t.Fatalf("%d bank requests, want 10", n)
	}
}

func TestFaultRefreshTokens(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "etz", emulator.Etranzact)
	b.readToken(t, "etz")
	// Rotating single-use refresh tokens: each refresh uses the one stored by the last.
	for i := 0; i < 3; i++ {
		if _, err := b.srv.MustCLI("write", "-f", b.mount+"/token/etz"); err != nil {
			t.Fatal(err)
		}
	}
	if st := b.emu.Stats(emulator.Etranzact); st.Logins != 1 || st.Refreshes != 3 || st.Failed != 0 {
		t.Fatalf("stats %+v, want 1 login and 3 refreshes, none rejected", st)
	}
	// A rejected refresh token: one login, not a loop.
	b.emu.FailNext(emulator.Etranzact, 1, emulator.Failure{Status: 400, Body: `{"error":"invalid_grant","error_description":"Token is not active"}`})
	if _, err := b.srv.MustCLI("write", "-f", b.mount+"/token/etz"); err != nil {
		t.Fatal(err)
	}
	if st := b.emu.Stats(emulator.Etranzact); st.Logins != 2 || st.Refreshes != 3 || st.Failed != 1 {
		t.Fatalf("stats %+v, want the rejected refresh followed by one login", st)
	}
	// Everything rejected: one refresh and one login, then an error.
	before := b.emu.Stats(emulator.Etranzact).Total
	b.emu.FailNext(emulator.Etranzact, -1, emulator.Failure{Status: 401})
	c := noRetryClient(t, b)
	if _, err := c.Logical().Write(b.mount+"/token/etz", nil); err == nil || contains(err.Error(), "Code: 502", "etranzact token request failed", "HTTP 401") != nil {
		t.Fatalf("forced refresh with everything rejected: %v", err)
	}
	if n := b.emu.Stats(emulator.Etranzact).Total - before; n != 2 {
		t.Fatalf("%d bank requests, want 2 (refresh, login)", n)
	}
}

func TestFaultNoExpiresIn(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "plain", emulator.Etranzact)
	b.configure(t, "dflt", emulator.Etranzact, "default_lifetime=120")
	opaque := emulator.Failure{Status: 200, Body: `{"access_token":"opaque-e2e-token","token_type":"bearer"}`}
	c := noRetryClient(t, b)
	b.emu.FailNext(emulator.Etranzact, 1, opaque)
	if _, err := read(c, b, "plain"); err == nil || contains(err.Error(), "Code: 502", "no expires_in", "default_lifetime") != nil {
		t.Fatalf("without default_lifetime: %v", err)
	}
	b.emu.FailNext(emulator.Etranzact, 1, opaque)
	sec, err := read(c, b, "dflt")
	if err != nil || sec.Data["access_token"] != "opaque-e2e-token" || sec.LeaseDuration < 118 || sec.LeaseDuration > 120 {
		t.Fatalf("with default_lifetime=120: %v %+v", err, sec)
	}
}

func TestFaultBadUpstreamInput(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	c := noRetryClient(t, b)
	cases := []struct {
		name string
		fail emulator.Failure
		want string
	}{
		{"html", emulator.Failure{Status: 502, Body: "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"}, "HTML page"},
		{"truncated", emulator.Failure{Status: 200, Body: `{"access_token":"abc","expires_in":6`}, "non-JSON"},
		{"10MB", emulator.Failure{Status: 200, Body: `{"access_token":"`, BodyBytes: 10 << 20}, "larger than 1048576 bytes"},
		{"slowloris", emulator.Failure{Status: 200, Body: `{"access_token":"abcdefghijklmnopqrstuvwxyz","expires_in":60}`, Dribble: 300 * time.Millisecond}, "timed out"},
		{"noaccesstoken", emulator.Failure{Status: 200, Body: `{"token_type":"bearer","expires_in":60}`}, "no access_token"},
		{"negative", emulator.Failure{Status: 200, Body: `{"access_token":"abc","expires_in":-60}`}, "expires_in: must be a positive"},
		{"string", emulator.Failure{Status: 200, Body: `{"access_token":"abc","expires_in":"60"}`}, "expires_in: must be a number"},
	}
	for _, tc := range cases {
		b.configure(t, tc.name, emulator.Rakbank, "timeout=3")
		before := b.emu.Stats(emulator.Rakbank).Total
		b.emu.FailNext(emulator.Rakbank, -1, tc.fail)
		start := time.Now()
		_, err := read(c, b, tc.name)
		took := time.Since(start)
		b.emu.ClearFailures()
		if err == nil || contains(err.Error(), "Code: 502", "rakbank token request failed", tc.want) != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		noSecret(t, err.Error())
		want := 1
		if tc.fail.Status == 502 {
			want = 3 // a 502 is transient: retried
		}
		if n := b.emu.Stats(emulator.Rakbank).Total - before; n != want {
			t.Errorf("%s: %d bank requests, want %d", tc.name, n, want)
		}
		if took > 5*time.Second {
			t.Errorf("%s: the read took %s with timeout=3s", tc.name, took)
		}
	}
	// The plugin is still up and serving.
	b.configure(t, "ok", emulator.Rakbank)
	if _, err := read(c, b, "ok"); err != nil {
		t.Fatalf("after the bad answers: %v", err)
	}
}

// TestFaultRequestBudgetSurvivesRestart: the request times are stored, so a
// restarted Vault (new Vault and plugin processes) still refuses a request
// that would exceed the budget.
func TestFaultRequestBudgetSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := ownVault(t, vaulttest.Options{Storage: "file"})
	b := newBank(t, srv)
	b.configure(t, "ac", emulator.AccelerationCloud, "max_requests_per_minute=2")
	for i := 0; i < 2; i++ {
		if _, err := srv.MustCLI("write", "-f", b.mount+"/token/ac"); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	c := noRetryClient(t, b)
	_, err := c.Logical().Write(b.mount+"/token/ac", nil)
	if err == nil || contains(err.Error(), "Code: 429", "request budget spent", "max_requests_per_minute=2") != nil {
		t.Fatalf("forced refresh past the budget after a restart: %v", err)
	}
	if n := b.emu.Stats(emulator.AccelerationCloud).Total; n != 2 {
		t.Fatalf("%d bank requests, want 2", n)
	}
}
