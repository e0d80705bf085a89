package bankauth

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

func (e *testEnv) token(t *testing.T, name string) (string, *logical.Response) {
	t.Helper()
	resp := e.mustOK(t, logical.ReadOperation, "token/"+name, nil)
	return resp.Data["access_token"].(string), resp
}

// memToken is the token the broker holds in memory for name, or "".
func (e *testEnv) memToken(name string) string {
	if res, ok := e.b.broker.Cached(name); ok {
		return res.Token.AccessToken
	}
	return ""
}

func TestBackgroundRefreshRenewsBeforeStale(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Etranzact, time.Minute) // stale at 48s, renewed at 42s
	e.configure(t, "etz", emulator.Etranzact)
	first, _ := e.token(t, "etz")
	e.step(41 * time.Second)
	if st := e.emu.Stats(emulator.Etranzact); st.Total != 1 {
		t.Fatalf("bank stats %+v before the refresh point, want 1 login", st)
	}
	e.step(2 * time.Second)
	if st := e.emu.Stats(emulator.Etranzact); st.Refreshes != 1 || st.Total != 2 {
		t.Fatalf("bank stats %+v after the refresh point, want one background refresh", st)
	}
	second, _ := e.token(t, "etz")
	if second == first || !e.emu.TokenValid(emulator.Etranzact, second) {
		t.Fatal("read after the background refresh did not get the new token")
	}
	if e.emu.Stats(emulator.Etranzact).Total != 2 {
		t.Fatal("the read waited on the bank")
	}
	// Stored before it was handed out (the rotated refresh token with it).
	stored, _ := readToken(context.Background(), e.storage, "etz")
	if stored == nil || stored.AccessToken != second || stored.RefreshToken == "" {
		t.Fatal("storage does not hold the background-refreshed token")
	}
	// Cleaned up, the backend stops refreshing.
	e.b.Clean(context.Background())
	e.step(10 * time.Minute)
	if n := e.emu.Stats(emulator.Etranzact).Total; n != 2 {
		t.Fatalf("%d bank requests after Clean, want none", n-2)
	}
}

// A bank granting tokens too short-lived to renew ahead of time (or an
// expiry close to now through clock skew) must not be asked again and again
// by background refresh: once planned in the past, each refresh planned the
// next one in the past (2,760 requests in 1.5 s after one read of a 2 s
// token, before the fix).
func TestShortLivedTokensAreNotRefreshedInTheBackground(t *testing.T) {
	t.Parallel()
	for _, ttl := range []time.Duration{time.Second, 2 * time.Second, 6 * time.Second} {
		e := newTestEnv(t)
		e.emu.SetTTL(emulator.Etranzact, ttl)
		e.configure(t, "etz", emulator.Etranzact)
		e.token(t, "etz")
		for i := 0; i < 20; i++ {
			e.step(250 * time.Millisecond)
		}
		if st := e.emu.Stats(emulator.Etranzact); st.Total != 1 {
			t.Fatalf("ttl %s: %d bank requests in 5s after one read, want 1", ttl, st.Total)
		}
		if n := e.b.broker.Planned(); n != 0 {
			t.Fatalf("ttl %s: %d background refreshes planned", ttl, n)
		}
	}
}

// Read every 5 s for 10 minutes, a 60 s token costs one bank request per
// token lifetime, every one of them in the background.
func TestBackgroundRefreshCostsOneRequestPerLifetime(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, time.Minute)
	e.configure(t, "rak", emulator.Rakbank)
	for i := 0; i < 120; i++ {
		e.token(t, "rak")
		e.step(5 * time.Second)
	}
	// Each 60 s token is renewed at the first step past its 42 s, so every
	// 45 s: 1 + 600/45 requests.
	if n := e.emu.Stats(emulator.Rakbank).Total; n != 14 {
		t.Fatalf("%d bank requests in 10 minutes, want 14", n)
	}
	if snap, _ := e.b.broker.Snapshot("rak"); snap.CacheMisses != 1 {
		t.Fatalf("%d reads missed the cache, want only the first", snap.CacheMisses)
	}
}

func TestIdleTokenIsNotRefreshed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, time.Minute)
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"background_refresh_idle": 10})
	e.token(t, "rak")
	e.step(61 * time.Second) // past the refresh point and expiry, unread
	if st := e.emu.Stats(emulator.Rakbank); st.Total != 1 {
		t.Fatalf("%d bank requests for a token nobody read, want 1", st.Total)
	}
	// Read again (and then often), it is fetched and kept fresh again.
	e.token(t, "rak")
	for i := 0; i < 9; i++ {
		e.step(5 * time.Second)
		e.token(t, "rak")
	}
	if st := e.emu.Stats(emulator.Rakbank); st.Total != 3 {
		t.Fatalf("%d bank requests, want the read's fetch and one background refresh after it", st.Total)
	}
}

func TestBackgroundRefreshOffByConfig(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, time.Minute)
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"background_refresh_idle": 0})
	for i := 0; i < 47; i++ {
		e.token(t, "rak")
		e.step(time.Second)
	}
	if st := e.emu.Stats(emulator.Rakbank); st.Total != 1 {
		t.Fatalf("%d bank requests with background refresh off", st.Total)
	}
	e.step(2 * time.Second) // stale: the read fetches
	e.token(t, "rak")
	if st := e.emu.Stats(emulator.Rakbank); st.Total != 2 {
		t.Fatalf("%d bank requests after the token went stale, want 2", st.Total)
	}
}

func TestNoBackgroundRefreshOnAPerformanceStandby(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, time.Minute)
	e.configure(t, "rak", emulator.Rakbank)
	e.token(t, "rak")
	e.b.Clean(context.Background())

	// A standby's backend on the same storage: it serves the stored token
	// but never renews it (its storage is read-only).
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	conf.System = &logical.StaticSystemView{ReplicationStateVal: consts.ReplicationPerformanceStandby}
	b, err := factoryWithClock(context.Background(), conf, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	e.b = b
	defer e.b.Clean(context.Background())
	e.token(t, "rak")
	e.step(47 * time.Second)
	if st := e.emu.Stats(emulator.Rakbank); st.Total != 1 {
		t.Fatalf("%d bank requests, want 1: a standby must not refresh", st.Total)
	}
	// A stale read on the standby is forwarded (ErrReadOnly), not fetched.
	e.step(2 * time.Second)
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
	e.step(12100 * time.Millisecond)
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
	// Expired: an error naming the failure.
	e.step(3 * time.Second)
	_, err := e.request(t, logical.ReadOperation, "token/rak", nil)
	coded, ok := err.(logical.HTTPCodedError)
	if !ok || coded.Code() != 502 || !strings.Contains(err.Error(), "ESB-503") || !strings.Contains(err.Error(), "rakbank") {
		t.Fatalf("read of an expired token: %v", err)
	}
	// The bank recovers: once the backoff ends a read gets a new token.
	e.emu.ClearFailures()
	e.step(broker.FailureBackoffMax)
	if got, _ := e.token(t, "rak"); got == first {
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
	b, err := factoryWithClock(context.Background(), conf, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	e.b = b
	defer e.b.Clean(context.Background())
	if _, err := e.request(t, logical.UpdateOperation, "token/ac", nil); err == nil || !strings.Contains(err.Error(), "request budget spent") {
		t.Fatalf("after restart: %v", err)
	}
	if n := e.emu.Stats(emulator.AccelerationCloud).Total; n != 2 {
		t.Fatalf("%d bank requests, want 2", n)
	}
	// The window slides: a minute after the first request there is room again.
	e.step(61 * time.Second)
	e.mustOK(t, logical.UpdateOperation, "token/ac", nil)
	if n := e.emu.Stats(emulator.AccelerationCloud).Total; n != 3 {
		t.Fatalf("%d bank requests, want 3", n)
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
	e := newTestEnv(t)
	allowLoopback(t, store)
	b, err := factoryWithClock(context.Background(), conf, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	e.b, e.storage = b, store
	defer e.b.Clean(context.Background())
	e.emu.SetTTL(emulator.Rakbank, time.Minute)
	e.configure(t, "rak", emulator.Rakbank)
	first, _ := e.token(t, "rak")
	store.failing.Store(true)
	// Keep reading so the background refresh stays on, until the token
	// expires: renewed at 42 s (not stored), retried no sooner than 5 s
	// later, then readers of the stale token back off (2 s doubling).
	for i := 0; i < 59; i++ {
		e.request(t, logical.ReadOperation, "token/rak", nil)
		e.step(time.Second)
	}
	if n := e.emu.Stats(emulator.Rakbank).Total; n < 3 || n > 6 {
		t.Fatalf("%d bank requests in 60s with failing storage, want 3-6", n)
	}
	stored, _ := readToken(context.Background(), store, "rak")
	if stored == nil || stored.AccessToken != first {
		t.Fatal("storage lost the last stored token")
	}
}

// While one reader waits on a slow bank, another reader of the stale but
// valid token waits at most broker.StaleWaitLimit, then gets that token.
func TestSlowBankDoesNotHoldUpReadersOfAValidToken(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Rakbank, 20*time.Second) // stale at 16s
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"background_refresh_idle": 0})
	first, _ := e.token(t, "rak")
	e.step(16100 * time.Millisecond)
	e.emu.SetLatency(emulator.Rakbank, time.Second)
	type read struct {
		tok      string
		warnings []string
	}
	reads := make(chan read, 2)
	for i := 0; i < 2; i++ {
		go func() {
			resp, err := e.request(t, logical.ReadOperation, "token/rak", nil)
			if err != nil || resp == nil || resp.IsError() {
				reads <- read{}
				return
			}
			reads <- read{resp.Data["access_token"].(string), resp.Warnings}
		}()
	}
	// One reader asks the bank; the other waits for it on the clock (the
	// scheduler's timer for the consent census, due minutes after the
	// mount, is the other waiter).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.clock.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal("no reader waits for the one asking the bank")
	}
	e.clock.Advance(broker.StaleWaitLimit)
	waiter, fetcher := <-reads, <-reads
	if waiter.tok != first || len(waiter.warnings) != 1 || !strings.Contains(waiter.warnings[0], "taking longer") {
		t.Fatalf("waiting reader: same token %t, warnings %v", waiter.tok == first, waiter.warnings)
	}
	if fetcher.tok == "" || fetcher.tok == first {
		t.Fatal("the reader that asked the bank did not get a new token")
	}
	if n := e.emu.Stats(emulator.Rakbank).Total; n != 2 {
		t.Fatalf("%d bank requests, want 2", n)
	}
}

// While a background refresh waits on a slow bank, reads of the still fresh
// token plan nothing of their own (before the scheduler, each planned a
// timer and queued a goroutine). Not parallel: it counts the process's
// goroutines.
func TestReadsDuringABackgroundRefreshPlanNothing(t *testing.T) {
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Etranzact, time.Minute) // renewed at 42s, stale at 48s
	e.configure(t, "etz", emulator.Etranzact)
	first, _ := e.token(t, "etz")
	e.emu.SetLatency(emulator.Etranzact, 500*time.Millisecond)
	base, peak := runtime.NumGoroutine(), 0
	e.clock.Advance(43 * time.Second) // the refresh starts, and waits on the bank
	reads := 0
	for tok := first; tok == first && reads < 1_000_000; reads++ {
		tok, _ = e.token(t, "etz")
		peak = max(peak, runtime.NumGoroutine())
		if n := e.b.broker.Planned(); n > 1 {
			t.Fatalf("%d refreshes planned for one name", n)
		}
	}
	e.b.broker.WaitBackground()
	if st := e.emu.Stats(emulator.Etranzact); st.Refreshes != 1 || st.Total != 2 {
		t.Fatalf("bank stats %+v after %d reads, want one background refresh", st, reads)
	}
	if peak-base > 20 {
		t.Fatalf("goroutines grew from %d to %d while a background refresh waited on the bank", base, peak)
	}
}
