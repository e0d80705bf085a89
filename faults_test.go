package bankauth

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// waitFor polls cond every 20ms for up to limit; it reports whether cond held.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func (e *testEnv) token(t *testing.T, name string) (string, *logical.Response) {
	t.Helper()
	resp := e.mustOK(t, logical.ReadOperation, "token/"+name, nil)
	return resp.Data["access_token"].(string), resp
}

func TestBackgroundRefreshRenewsBeforeStale(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Etranzact, 5*time.Second) // stale at 4s, renewed at 3.5s
	e.configure(t, "etz", emulator.Etranzact)
	first, _ := e.token(t, "etz")
	// The bank counts the refresh when it answers; the backend holds the new
	// token only once it has stored it, a moment later: wait for both.
	renewed := func() bool {
		tok := e.b.entryFor("etz").token.Load()
		return e.emu.Stats(emulator.Etranzact).Refreshes == 1 && tok != nil && tok.AccessToken != first
	}
	if !waitFor(10*time.Second, renewed) {
		t.Fatalf("no background refresh: %+v", e.emu.Stats(emulator.Etranzact))
	}
	before := e.emu.Stats(emulator.Etranzact).Total
	second, _ := e.token(t, "etz")
	if second == first || !e.emu.TokenValid(emulator.Etranzact, second) {
		t.Fatal("read after the background refresh did not get the new token")
	}
	if e.emu.Stats(emulator.Etranzact).Total != before {
		t.Fatal("the read waited on the bank")
	}
	// Stored before it was handed out (the rotated refresh token with it).
	stored, _ := readToken(context.Background(), e.storage, "etz")
	if stored == nil || stored.AccessToken != second || stored.RefreshToken == "" {
		t.Fatal("storage does not hold the background-refreshed token")
	}
	// Cleaned up, the backend stops refreshing.
	e.b.Clean(context.Background())
	n := e.emu.Stats(emulator.Etranzact).Total
	time.Sleep(5 * time.Second)
	if m := e.emu.Stats(emulator.Etranzact).Total; m != n {
		t.Fatalf("%d bank requests after Clean", m-n)
	}
}

func TestIdleTokenIsNotRefreshed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, 5*time.Second)
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"background_refresh_idle": 1})
	e.token(t, "rak")
	time.Sleep(5500 * time.Millisecond) // past the refresh point and expiry, unread
	if st := e.emu.Stats(emulator.Rakbank); st.Total != 1 {
		t.Fatalf("%d bank requests for a token nobody read, want 1", st.Total)
	}
	// Read again (and then often), it is fetched and kept fresh again.
	e.token(t, "rak")
	if !waitFor(10*time.Second, func() bool {
		e.token(t, "rak")
		time.Sleep(300 * time.Millisecond)
		return e.emu.Stats(emulator.Rakbank).Total == 3
	}) {
		t.Fatalf("no background refresh of a token read again: %+v", e.emu.Stats(emulator.Rakbank))
	}
	e.b.Clean(context.Background())
}

func TestBackgroundRefreshOffByConfig(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, 5*time.Second)
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"background_refresh_idle": 0})
	for i := 0; i < 8; i++ {
		e.token(t, "rak")
		time.Sleep(500 * time.Millisecond)
	}
	// 4 s of reads of a 5 s token: stale at 4 s, no background request.
	if st := e.emu.Stats(emulator.Rakbank); st.Total > 2 {
		t.Fatalf("%d bank requests with background refresh off", st.Total)
	}
}

func TestNoBackgroundRefreshOnAPerformanceStandby(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, 5*time.Second)
	e.configure(t, "rak", emulator.Rakbank)
	e.token(t, "rak")
	e.b.Clean(context.Background())

	// A standby's backend on the same storage: it serves the stored token
	// but never renews it (its storage is read-only).
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	conf.System = &logical.StaticSystemView{ReplicationStateVal: consts.ReplicationPerformanceStandby}
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e.b = lb.(*backend)
	defer e.b.Clean(context.Background())
	e.token(t, "rak")
	time.Sleep(4200 * time.Millisecond)
	if st := e.emu.Stats(emulator.Rakbank); st.Total != 1 {
		t.Fatalf("%d bank requests, want 1: a standby must not refresh", st.Total)
	}
	// A stale read on the standby is forwarded (ErrReadOnly), not fetched.
	if _, err := e.request(t, logical.ReadOperation, "token/rak", nil); err != logical.ErrReadOnly {
		t.Fatalf("stale read on a standby: %v, want ErrReadOnly", err)
	}
}

func TestServeWhileValidThenErrorWhenExpired(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, 15*time.Second) // stale at 12s
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"background_refresh_idle": 0})
	first, _ := e.token(t, "rak")
	time.Sleep(12100 * time.Millisecond)
	e.emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 503,
		Body: `{"status":"503","response_code":"ESB-503","response_message":"Backend down","description":"maintenance"}`})
	got, resp := e.token(t, "rak")
	if got != first || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "HTTP 503") ||
		!strings.Contains(resp.Warnings[0], "ESB-503") {
		t.Fatalf("stale read while the bank fails: same token %t, warnings %v", got == first, resp.Warnings)
	}
	if resp.Secret.TTL > 3*time.Second || resp.Secret.TTL <= 0 {
		t.Fatalf("lease TTL %s, want the token's remaining life", resp.Secret.TTL)
	}
	if n := e.emu.Stats(emulator.Rakbank).Total; n != 4 {
		t.Fatalf("%d bank requests, want 1 + 3 attempts", n)
	}
	// Backing off: the next read does not ask the bank.
	if got, resp = e.token(t, "rak"); got != first || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "backs off") {
		t.Fatalf("second read: warnings %v", resp.Warnings)
	}
	if n := e.emu.Stats(emulator.Rakbank).Total; n != 4 {
		t.Fatalf("%d bank requests, want no new one while backing off", n)
	}
	// Expired: an error naming the failure, still without hammering the bank.
	time.Sleep(3 * time.Second)
	_, err := e.request(t, logical.ReadOperation, "token/rak", nil)
	coded, ok := err.(logical.HTTPCodedError)
	if !ok || coded.Code() != 502 || !strings.Contains(err.Error(), "ESB-503") || !strings.Contains(err.Error(), "rakbank") {
		t.Fatalf("read of an expired token: %v", err)
	}
	// The bank recovers: once the backoff ends a read gets a new token.
	e.emu.ClearFailures()
	if !waitFor(10*time.Second, func() bool {
		resp, err := e.request(t, logical.ReadOperation, "token/rak", nil)
		return err == nil && resp != nil && !resp.IsError() && resp.Data["access_token"] != first
	}) {
		t.Fatal("no new token after the bank recovered")
	}
}

func TestRequestBudgetThroughTheBackend(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "ac", emulator.AccelerationCloud)
	cfg := e.mustOK(t, logical.ReadOperation, "config/ac", nil).Data
	if cfg["max_requests_per_minute"] != 10 || cfg["max_requests_per_day"] != 60 || cfg["background_refresh_idle"] != int64(3600) ||
		cfg["default_lifetime"] != int64(0) {
		t.Fatalf("config read %v", cfg)
	}
	e.mustOK(t, logical.UpdateOperation, "config/ac", map[string]any{"max_requests_per_minute": 2})
	first, _ := e.token(t, "ac")
	e.mustOK(t, logical.UpdateOperation, "token/ac", nil)
	_, err := e.request(t, logical.UpdateOperation, "token/ac", nil)
	coded, ok := err.(logical.HTTPCodedError)
	if !ok || coded.Code() != 429 || !strings.Contains(err.Error(), "request budget spent") {
		t.Fatalf("third forced refresh in a minute: %v", err)
	}
	if n := e.emu.Stats(emulator.AccelerationCloud).Total; n != 2 {
		t.Fatalf("%d bank requests, want 2", n)
	}
	// Reads still get the (fresh) token.
	if got, _ := e.token(t, "ac"); got == first {
		t.Fatal("read does not serve the second token")
	}
	// The budget survives a restart (a new backend on the same storage).
	e.b.Clean(context.Background())
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	lb, _ := Factory(context.Background(), conf)
	e.b = lb.(*backend)
	defer e.b.Clean(context.Background())
	if _, err := e.request(t, logical.UpdateOperation, "token/ac", nil); err == nil || !strings.Contains(err.Error(), "request budget spent") {
		t.Fatalf("after restart: %v", err)
	}
	if n := e.emu.Stats(emulator.AccelerationCloud).Total; n != 2 {
		t.Fatalf("%d bank requests, want 2", n)
	}
}

func TestLifecycleFieldsBadInputIs400(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	for field, v := range map[string]any{
		"default_lifetime": -1, "background_refresh_idle": -5, "max_requests_per_minute": -1,
		"max_requests_per_day": 2_000_000,
	} {
		resp, err := e.request(t, logical.UpdateOperation, "config/rak", map[string]any{field: v})
		if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), field) {
			t.Errorf("%s=%v: %v %v, want a 400 naming the field", field, v, resp, err)
		}
	}
	resp, err := e.request(t, logical.UpdateOperation, "config/rak", map[string]any{"default_lifetime": 5})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "default_lifetime") {
		t.Errorf("default_lifetime=5: %v %v", resp, err)
	}
}

func TestRejectedRefreshTokenFallsBackToOneLogin(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "etz", emulator.Etranzact)
	e.token(t, "etz")
	// The bank forgets its refresh tokens (e.g. revoked): a forced refresh
	// tries the refresh grant once, then logs in once.
	e.emu.FailNext(emulator.Etranzact, 1, emulator.Failure{Status: 400, Body: `{"error":"invalid_grant","error_description":"Token is not active"}`})
	e.mustOK(t, logical.UpdateOperation, "token/etz", nil)
	if st := e.emu.Stats(emulator.Etranzact); st.Logins != 2 || st.Refreshes != 0 || st.Failed != 1 || st.Total != 3 {
		t.Fatalf("stats %+v, want login, rejected refresh, login", st)
	}
	e.b.Clean(context.Background())
}

// putFailing is storage whose token writes fail once failing is set.
type putFailing struct {
	logical.Storage
	failing atomic.Bool
}

func (s *putFailing) Put(ctx context.Context, se *logical.StorageEntry) error {
	if s.failing.Load() && strings.HasPrefix(se.Key, tokenPrefix) {
		return errors.New("storage unavailable")
	}
	return s.Storage.Put(ctx, se)
}

func TestBackgroundRefreshBacksOffWhenStorageFails(t *testing.T) {
	t.Parallel()
	store := &putFailing{Storage: &logical.InmemStorage{}}
	conf := logical.TestBackendConfig()
	conf.StorageView = store
	allowLoopback(t, store)
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t)
	e.b, e.storage = lb.(*backend), store
	defer e.b.Clean(context.Background())
	e.emu.SetTTL(emulator.Rakbank, 5*time.Second)
	e.configure(t, "rak", emulator.Rakbank)
	first, _ := e.token(t, "rak")
	store.failing.Store(true)
	// Keep reading the fresh token so the background refresh stays on.
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		e.request(t, logical.ReadOperation, "token/rak", nil)
	}
	// Renewed at 3.5s (not stored), retried once after the 1.5-2s backoff at
	// most: no loop of bank requests while storage fails.
	if n := e.emu.Stats(emulator.Rakbank).Total; n < 2 || n > 4 {
		t.Fatalf("%d bank requests in 6s with failing storage, want 2-4", n)
	}
	stored, _ := readToken(context.Background(), store, "rak")
	if stored == nil || stored.AccessToken != first {
		t.Fatal("storage lost the last stored token")
	}
}

func TestSlowBankDoesNotHoldUpReadersOfAValidToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, 20*time.Second) // stale at 16s
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"background_refresh_idle": 0})
	first, _ := e.token(t, "rak")
	time.Sleep(16100 * time.Millisecond)
	e.emu.SetLatency(emulator.Rakbank, 4*time.Second)
	fetched := make(chan string, 1)
	go func() {
		resp, err := e.request(t, logical.ReadOperation, "token/rak", nil)
		if err == nil && resp != nil && !resp.IsError() {
			fetched <- resp.Data["access_token"].(string)
		}
		close(fetched)
	}()
	time.Sleep(200 * time.Millisecond) // the first reader is now waiting on the bank
	start := time.Now()
	got, resp := e.token(t, "rak")
	waited := time.Since(start)
	if got != first || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "taking longer") {
		t.Fatalf("second reader: same token %t, warnings %v", got == first, resp.Warnings)
	}
	if waited > 3*time.Second {
		t.Fatalf("second reader waited %s for a slow bank, want about 2s", waited)
	}
	if tok := <-fetched; tok == "" || tok == first {
		t.Fatal("the first reader did not get a new token")
	}
	if n := e.emu.Stats(emulator.Rakbank).Total; n != 2 {
		t.Fatalf("%d bank requests, want 2", n)
	}
}

// While a background refresh waits on a slow bank, reads of the still fresh
// token must not plan refreshes of their own: each would be a timer for a
// point already past and a goroutine queued on the entry's lock, one per
// read. Not parallel: it counts the process's goroutines.
func TestReadsDuringABackgroundRefreshPlanNothing(t *testing.T) {
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Etranzact, 5*time.Second) // renewed at 3.5s, stale at 4s
	e.configure(t, "etz", emulator.Etranzact)
	first, _ := e.token(t, "etz")
	e.emu.SetLatency(emulator.Etranzact, 1500*time.Millisecond)
	e.emu.SetTTL(emulator.Etranzact, time.Minute) // the renewed token is not renewed again here
	base, peak := runtime.NumGoroutine(), 0
	// Read until the background refresh has brought the new token.
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		tok, _ := e.token(t, "etz")
		peak = max(peak, runtime.NumGoroutine())
		if tok != first {
			break
		}
	}
	e.b.Clean(context.Background())
	if st := e.emu.Stats(emulator.Etranzact); st.Refreshes != 1 {
		t.Fatalf("bank stats %+v, want one background refresh", st)
	}
	if peak-base > 50 {
		t.Fatalf("goroutines grew from %d to %d while a background refresh waited on the bank", base, peak)
	}
}
