package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/jonboulle/clockwork"
)

// fakeConsents is a ConsentSource in memory with a bank that rotates
// refresh tokens and refuses (invalid_grant) one sent twice, as the root
// package's source over Vault storage and package fapi does.
type fakeConsents struct {
	clock *clockwork.FakeClock
	life  time.Duration
	idle  time.Duration

	mu       sync.Mutex
	recs     map[string]*fakeConsent
	sent     []string        // refresh tokens the bank received, in order
	used     map[string]bool // refresh tokens the bank consumed
	n        int
	putFails bool  // storing a renewed consent fails
	bankErr  error // the bank's answer to the next refreshes
	spent    map[string]bool
	loads    int
	expired  []string
}

type fakeConsent struct {
	access, refresh string
	issued          time.Time
	revoked         bool
	attemptExpires  time.Time
}

func newFakeConsents(clock *clockwork.FakeClock) *fakeConsents {
	return &fakeConsents{clock: clock, life: 5 * time.Minute, idle: 30 * time.Minute,
		recs: map[string]*fakeConsent{}, used: map[string]bool{}, spent: map[string]bool{}}
}

func (f *fakeConsents) authorize(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.recs[key] = &fakeConsent{access: fmt.Sprintf("at-%d", f.n), refresh: fmt.Sprintf("rt-%d", f.n), issued: f.clock.Now()}
}

func (f *fakeConsents) tokenOf(r *fakeConsent) ConsentToken {
	return ConsentToken{Token: bank.Token{AccessToken: strings.Clone(r.access), TokenType: "DPoP", Scope: "accounts",
		ObtainedAt: r.issued, ExpiresAt: r.issued.Add(f.life)}, Refreshable: true, Lease: true, Idle: f.idle}
}

func (f *fakeConsents) LoadConsent(_ context.Context, config, id string) (ConsentToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	r := f.recs[config+"/"+id]
	switch {
	case r == nil:
		return ConsentToken{}, NoConsentError{config, id}
	case r.revoked:
		return ConsentToken{}, &ReauthError{config, id, "state revoked"}
	}
	return f.tokenOf(r), nil
}

func (f *fakeConsents) RenewConsent(_ context.Context, config, id, held string) (ConsentToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.recs[config+"/"+id]
	switch {
	case r == nil:
		return ConsentToken{}, NoConsentError{config, id}
	case r.revoked:
		return ConsentToken{}, &ReauthError{config, id, "state revoked"}
	case f.spent[r.refresh]:
		r.revoked = true
		return ConsentToken{}, &ReauthError{config, id, "the refresh token was sent before"}
	}
	if r.access != held && f.clock.Now().Before(r.issued.Add(f.life*4/5)) {
		return f.tokenOf(r), nil
	}
	// The bank.
	f.sent = append(f.sent, r.refresh)
	if f.bankErr != nil {
		if f.bankErr.Error() == "invalid_grant" {
			r.revoked = true
			return ConsentToken{}, &ReauthError{config, id, "invalid_grant"}
		}
		return ConsentToken{}, f.bankErr
	}
	if f.used[r.refresh] {
		r.revoked = true
		return ConsentToken{}, &ReauthError{config, id, "invalid_grant"}
	}
	f.used[r.refresh] = true
	f.n++
	next := &fakeConsent{access: fmt.Sprintf("at-%d", f.n), refresh: fmt.Sprintf("rt-%d", f.n), issued: f.clock.Now()}
	// Storage: the rotated refresh token first; nothing handed out unstored.
	if f.putFails {
		f.spent[r.refresh] = true
		return ConsentToken{}, &StoreError{errors.New("storage unavailable")}
	}
	f.recs[config+"/"+id] = next
	return f.tokenOf(next), nil
}

func (f *fakeConsents) ExpireAttempt(_ context.Context, config, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.recs[config+"/"+id]; r != nil && !r.attemptExpires.IsZero() && !f.clock.Now().Before(r.attemptExpires) {
		r.attemptExpires = time.Time{}
		f.expired = append(f.expired, config+"/"+id)
	}
	return nil
}

func (f *fakeConsents) SweepAttempts(ctx context.Context) (bool, error) {
	f.mu.Lock()
	var keys []string
	for k := range f.recs {
		keys = append(keys, k)
	}
	f.mu.Unlock()
	for _, k := range keys {
		config, id, _ := strings.Cut(k, "/")
		if err := f.ExpireAttempt(ctx, config, id); err != nil {
			return true, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.recs {
		if !r.attemptExpires.IsZero() {
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeConsents) refreshes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

func newConsentBroker(t testing.TB) (*Broker, *fakeConsents, *clockwork.FakeClock) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src := newFakeConsents(clock)
	b := New(Options{Clock: clock, Consents: src})
	t.Cleanup(b.Close)
	return b, src, clock
}

// A hundred readers of an expired consent token cost one refresh, and all
// get the new token.
func TestConsentCrowdOneRefresh(t *testing.T) {
	b, src, clock := newConsentBroker(t)
	src.idle = 0 // readers alone
	src.authorize("ob/alice")
	ctx := context.Background()
	first, err := b.ConsentToken(ctx, src, "ob", "alice")
	if err != nil || first.Token.AccessToken != "at-1" || !first.Lease {
		t.Fatalf("first read: %+v %v", first, err)
	}
	if res, ok := b.CachedConsent("ob", "alice"); !ok || res.Token.AccessToken != "at-1" {
		t.Fatalf("cached read: %+v %v", res, ok)
	}
	if b.Planned() != 0 {
		t.Fatal("a background refresh is planned with background_refresh_idle off")
	}
	clock.Advance(10 * time.Minute) // past expiry
	var wg sync.WaitGroup
	tokens := make([]string, 100)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.ConsentToken(ctx, src, "ob", "alice")
			if err != nil {
				t.Error(err)
			}
			tokens[i] = res.Token.AccessToken
		}()
	}
	wg.Wait()
	if n := src.refreshes(); n != 1 {
		t.Errorf("100 readers caused %d refreshes", n)
	}
	for _, tok := range tokens {
		if tok != tokens[0] || tok == "at-1" {
			t.Fatalf("readers got %q and %q", tokens[0], tok)
		}
	}
}

// A consent read within background_refresh_idle is renewed before it goes
// stale, through the one scheduler; one nobody reads is not.
func TestConsentBackgroundRefresh(t *testing.T) {
	b, src, clock := newConsentBroker(t)
	src.idle = 2 * time.Minute
	src.authorize("ob/alice")
	src.authorize("ob/bob")
	ctx := context.Background()
	for _, id := range []string{"alice", "bob"} {
		if _, err := b.ConsentToken(ctx, src, "ob", id); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.Planned(); n != 2 {
		t.Fatalf("%d background refreshes planned, want 2", n)
	}
	// alice is read every minute; bob never again. The refresh point is at
	// 70% of the 5-minute life (3.5 minutes).
	for range 3 {
		clock.Advance(time.Minute)
		b.WaitBackground()
		if _, ok := b.CachedConsent("ob", "alice"); !ok {
			t.Fatal("alice's token is not cached")
		}
	}
	clock.Advance(31 * time.Second)
	b.WaitBackground()
	src.mu.Lock()
	sent := append([]string(nil), src.sent...)
	src.mu.Unlock()
	if len(sent) != 1 || sent[0] != "rt-1" {
		t.Fatalf("refresh tokens sent: %v, want alice's only", sent)
	}
	clock.Advance(30 * time.Second) // both first tokens are stale now
	res, ok := b.CachedConsent("ob", "alice")
	if !ok || res.Token.AccessToken == "at-1" {
		t.Errorf("alice's token after the background refresh: %q (cached %v)", res.Token.AccessToken, ok)
	}
	if _, ok := b.CachedConsent("ob", "bob"); ok {
		t.Error("bob's token was kept fresh though nobody read it")
	}
}

// When the renewed consent cannot be stored, the new access token is not
// handed out, and the spent refresh token is never sent again: the consent
// needs re-authorization.
func TestConsentRotationStoresFirst(t *testing.T) {
	b, src, clock := newConsentBroker(t)
	src.idle = 0
	src.authorize("ob/alice")
	ctx := context.Background()
	if _, err := b.ConsentToken(ctx, src, "ob", "alice"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(4*time.Minute + 30*time.Second) // stale, still valid
	src.mu.Lock()
	src.putFails = true
	src.mu.Unlock()
	res, err := b.ConsentToken(ctx, src, "ob", "alice")
	if err == nil || res.Token.AccessToken != "" || !strings.Contains(err.Error(), "storage unavailable") {
		t.Fatalf("read with failing storage: %+v %v; want the storage error and no token", res, err)
	}
	if _, ok := b.CachedConsent("ob", "alice"); ok {
		t.Fatal("a token whose consent could not be stored is cached")
	}
	src.mu.Lock()
	src.putFails = false
	src.mu.Unlock()
	clock.Advance(time.Minute) // past the backoff and the token's expiry
	_, err = b.RefreshConsent(ctx, src, "ob", "alice")
	var re *ReauthError
	if !errors.As(err, &re) {
		t.Fatalf("refresh after the failed store: %v, want re-authorization", err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.sent) != 1 {
		t.Errorf("the bank received refresh tokens %v; the spent one must not be sent again", src.sent)
	}
}

// A refresh answered invalid_grant ends the consent's refreshes: reads
// answer re-authorization, and neither readers nor the scheduler ask the
// bank again; no memory is kept for it.
func TestConsentInvalidGrantStopsRefreshes(t *testing.T) {
	b, src, clock := newConsentBroker(t)
	src.authorize("ob/alice")
	ctx := context.Background()
	if _, err := b.ConsentToken(ctx, src, "ob", "alice"); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.bankErr = errors.New("invalid_grant")
	src.mu.Unlock()
	clock.Advance(10 * time.Minute)
	b.WaitBackground()
	for range 5 {
		_, err := b.ConsentToken(ctx, src, "ob", "alice")
		var re *ReauthError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "consent ob/alice needs re-authorization") {
			t.Fatalf("read: %v", err)
		}
		clock.Advance(time.Minute)
		b.WaitBackground()
	}
	if n := src.refreshes(); n != 1 {
		t.Errorf("the bank saw %d refreshes, want 1", n)
	}
	if n := b.ConsentLen(); n != 0 || b.Planned() != 0 {
		t.Errorf("%d consents in memory, %d planned, for a revoked one", n, b.Planned())
	}
}

// A failed background refresh backs off and is tried again while the token
// is still valid.
func TestConsentBackgroundRefreshBacksOff(t *testing.T) {
	b, src, clock := newConsentBroker(t)
	src.authorize("ob/alice")
	ctx := context.Background()
	if _, err := b.ConsentToken(ctx, src, "ob", "alice"); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.bankErr = errors.New("temporarily_unavailable")
	src.mu.Unlock()
	clock.Advance(3*time.Minute + 30*time.Second) // the refresh point
	b.WaitBackground()
	if n := src.refreshes(); n != 1 {
		t.Fatalf("%d refreshes at the refresh point", n)
	}
	if b.Planned() != 1 {
		t.Fatal("no retry planned after a failure")
	}
	src.mu.Lock()
	src.bankErr = nil
	src.mu.Unlock()
	clock.Advance(MinBackgroundLead)
	b.WaitBackground()
	if n := src.refreshes(); n != 2 {
		t.Fatalf("%d refreshes after the retry", n)
	}
	if res, ok := b.CachedConsent("ob", "alice"); !ok || res.Token.AccessToken == "at-1" {
		t.Errorf("after the retry: %q", res.Token.AccessToken)
	}
}

// Expired attempts are removed by the scheduler at their expiry.
func TestConsentAttemptExpiresThroughScheduler(t *testing.T) {
	b, src, clock := newConsentBroker(t)
	src.authorize("ob/alice")
	src.mu.Lock()
	src.recs["ob/alice"].attemptExpires = clock.Now().Add(10 * time.Minute)
	src.mu.Unlock()
	b.ExpireAttemptAt("ob", "alice", clock.Now().Add(10*time.Minute))
	clock.Advance(9 * time.Minute)
	b.WaitBackground()
	if len(src.expired) != 0 {
		t.Fatal("removed before its expiry")
	}
	clock.Advance(time.Minute)
	b.WaitBackground()
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.expired) != 1 || b.Planned() != 0 {
		t.Errorf("expired %v, planned %d", src.expired, b.Planned())
	}
}

// Attempts no planned removal covers (written before a restart) are
// removed by the sweep, which plans itself again only while attempts are
// left; without PlanAttemptSweep nothing is planned at all.
func TestConsentAttemptSweep(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src := newFakeConsents(clock)
	src.authorize("ob/alice")
	src.authorize("ob/bob")
	src.recs["ob/alice"].attemptExpires = clock.Now().Add(5 * time.Minute)
	src.recs["ob/bob"].attemptExpires = clock.Now().Add(15 * time.Minute)
	b := New(Options{Clock: clock, Consents: src, AttemptSweep: 10 * time.Minute})
	defer b.Close()
	b.PlanAttemptSweep()
	b.PlanAttemptSweep() // once is enough
	if b.Planned() != 0 || len(b.sched.q) != 1 {
		t.Fatalf("the sweep counts as %d planned tasks, %d queued", b.Planned(), len(b.sched.q))
	}
	clock.Advance(9 * time.Minute)
	b.WaitBackground()
	if len(src.expired) != 0 {
		t.Fatal("swept before the first period ended")
	}
	for i, want := range []int{1, 2} {
		clock.Advance(time.Minute + time.Duration(i)*9*time.Minute) // at 10 and 19 minutes
		b.WaitBackground()
		src.mu.Lock()
		n := len(src.expired)
		src.mu.Unlock()
		if n != want {
			t.Fatalf("expired %d, want %d", n, want)
		}
	}
	b.sched.mu.Lock()
	defer b.sched.mu.Unlock()
	if len(b.sched.q) != 0 {
		t.Error("the sweep planned itself again with no attempt left")
	}
}

// A consent changed in storage (ForgetConsent) or whose config changed is
// read from storage again; a missing one keeps no state.
func TestConsentForget(t *testing.T) {
	b, src, _ := newConsentBroker(t)
	src.authorize("ob/alice")
	ctx := context.Background()
	if _, err := b.ConsentToken(ctx, src, "ob", "nobody"); !errors.As(err, new(NoConsentError)) {
		t.Fatalf("missing consent: %v", err)
	}
	if _, err := b.ConsentToken(ctx, src, "ob", "alice"); err != nil {
		t.Fatal(err)
	}
	if b.ConsentLen() != 1 {
		t.Fatalf("%d consents in memory", b.ConsentLen())
	}
	src.authorize("ob/alice") // a new callback
	b.ForgetConsent("ob", "alice")
	if _, ok := b.CachedConsent("ob", "alice"); ok {
		t.Fatal("served from memory after ForgetConsent")
	}
	res, err := b.ConsentToken(ctx, src, "ob", "alice")
	if err != nil || res.Token.AccessToken != "at-2" {
		t.Fatalf("after the callback: %q %v", res.Token.AccessToken, err)
	}
	b.Forget("ob") // the config changed
	if _, ok := b.CachedConsent("ob", "alice"); ok || b.ConsentLen() != 0 {
		t.Fatal("a config change kept its consents in memory")
	}
}

func TestCachedConsentReadAllocatesNothing(t *testing.T) {
	b, src, _ := newConsentBroker(t)
	src.authorize("ob/alice")
	if _, err := b.ConsentToken(context.Background(), src, "ob", "alice"); err != nil {
		t.Fatal(err)
	}
	path := "token/ob/alice"
	config, id := path[6:8], path[9:]
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := b.CachedConsent(config, id); !ok {
			t.Fatal("not cached")
		}
	})
	if allocs != 0 {
		t.Errorf("a cached consent read allocates %.1f times", allocs)
	}
}

// A node that cannot write storage (a performance standby) serves cached
// consent tokens, never renews one (the active node does: ErrReadOnly
// lets Vault forward the read), and refreshes nothing in the background.
func TestConsentReadOnlyNode(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	src := newFakeConsents(clock)
	src.authorize("ob/alice")
	b := New(Options{Clock: clock, Consents: src, ReadOnly: func() bool { return true }})
	defer b.Close()
	ctx := context.Background()
	if res, err := b.ConsentToken(ctx, src, "ob", "alice"); err != nil || res.Token.AccessToken != "at-1" {
		t.Fatalf("read on the standby: %+v %v", res, err)
	}
	clock.Advance(4*time.Minute + 30*time.Second)
	b.WaitBackground()
	if _, err := b.ConsentToken(ctx, src, "ob", "alice"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("stale read on the standby: %v", err)
	}
	if n := src.refreshes(); n != 0 {
		t.Errorf("the standby sent %d refreshes", n)
	}
}

// BenchmarkCachedConsentRead is a cached consent token read from memory,
// as the fast path makes it, by parallel readers of 1,000 consents.
func BenchmarkCachedConsentRead(b *testing.B) {
	br, src, _ := newConsentBroker(b)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("user%04d", i)
		src.authorize("ob/" + ids[i])
		if _, err := br.ConsentToken(context.Background(), src, "ob", ids[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := br.CachedConsent("ob", ids[i%len(ids)]); !ok {
				b.Fatal("not cached")
			}
			i++
		}
	})
}
