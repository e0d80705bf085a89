package bankauth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/jonboulle/clockwork"
)

// ops is the storage reads and lists made so far.
func (e *censusEnv) ops() int64 { return e.s.gets.Load() + e.s.lists.Load() }

// censusEnv is a backend on counting storage with a fake clock; no bank.
type censusEnv struct {
	b     *backend
	s     *countingStorage
	clock *clockwork.FakeClock
}

func newCensusEnv(t *testing.T, state consts.ReplicationState) *censusEnv {
	t.Helper()
	conf := logical.TestBackendConfig()
	s := &countingStorage{Storage: &logical.InmemStorage{}}
	conf.StorageView = s
	sv := logical.TestSystemView()
	sv.ReplicationStateVal = state
	conf.System = sv
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	b, err := factoryWithClock(context.Background(), conf, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Clean(context.Background()) })
	return &censusEnv{b: b, s: s, clock: clock}
}

func (e *censusEnv) step(d time.Duration) {
	e.clock.Advance(d)
	e.b.broker.WaitBackground()
}

// put stores and indexes n consents config/<prefix><i> made by mk.
func (e *censusEnv) put(t *testing.T, config, prefix string, n int, mk func(now time.Time) *consentRecord) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		// Indexed as a consent write indexes it, on the storage under the
		// counter: the census's reads are what the test counts.
		if err := e.b.indexConsent(context.Background(), e.s.Storage, config, id); err != nil {
			t.Fatal(err)
		}
		if err := putConsent(context.Background(), e.s, config, id, mk(e.clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
}

func authorizedUntil(d time.Duration) func(time.Time) *consentRecord {
	return func(now time.Time) *consentRecord {
		r := &consentRecord{State: consentAuthorized, Token: &fapi.Token{AccessToken: "at", RefreshToken: "rt"}}
		if d != 0 {
			r.ConsentExpiresAt = now.Add(d)
		}
		return r
	}
}

func withState(state string, attempt time.Duration) func(time.Time) *consentRecord {
	return func(now time.Time) *consentRecord {
		r := &consentRecord{State: state}
		if attempt != 0 {
			r.Attempt = &fapi.Attempt{ExpiresAt: now.Add(attempt)}
		}
		return r
	}
}

// The census counts every consent per state (expired past
// consent_expires_at and pending attempts run out included) and those
// expiring within 7 days; not at mount, but censusFirstAfter later, paged
// at most censusPageSize storage operations every censusPagePause; then
// every censusEvery, dropping configs whose consents are gone.
func TestConsentCensusCountsPagedAndBounded(t *testing.T) {
	e := newCensusEnv(t, 0)
	e.put(t, "ob", "soon", 10, authorizedUntil(3*24*time.Hour))
	e.put(t, "ob", "later", 20, authorizedUntil(30*24*time.Hour))
	e.put(t, "ob", "open", 400, authorizedUntil(0))
	e.put(t, "ob", "past", 3, authorizedUntil(-time.Hour))
	e.put(t, "ob", "waiting", 7, withState(consentPending, 10*time.Minute))
	e.put(t, "ob", "lapsed", 4, withState(consentPending, time.Minute)) // its attempt runs out before the census
	e.put(t, "ob", "no", 2, withState(consentDenied, 0))
	e.put(t, "ob", "gone", 6, withState(consentRevoked, 0))
	e.put(t, "ob", "old", 1, withState(consentExpired, 0))
	e.put(t, "ob2", "r", 3, withState(consentRevoked, 0))
	const total = 10 + 20 + 400 + 3 + 7 + 4 + 2 + 6 + 1 + 3

	e.step(censusFirstAfter - time.Second)
	if n := e.ops(); n != 0 {
		t.Fatalf("%d storage reads before the census was due: none at mount", n)
	}
	if _, ok := e.b.census.get("ob"); ok {
		t.Fatal("counts before the census")
	}
	e.step(time.Second)
	runs := 1
	if n := e.ops(); n != censusPageSize {
		t.Fatalf("the first run made %d storage operations, want a page of %d", n, censusPageSize)
	}
	e.step(censusPagePause - time.Millisecond)
	if n := e.ops(); n != censusPageSize {
		t.Fatalf("%d storage operations before the pause ended", n)
	}
	for e.b.census.snapshotDone().IsZero() {
		before := e.ops()
		e.step(censusPagePause)
		runs++
		if n := e.ops() - before; n > censusPageSize {
			t.Fatalf("a run made %d storage operations, more than %d", n, censusPageSize)
		}
		if runs > 10 {
			t.Fatal("the census never ended")
		}
	}
	// A list of the index's configs; per 200 ids of a config one index
	// directory and page read (ob: 3 pages of 456 ids, ob2: 1); one read
	// per consent.
	if n := e.ops(); n != 1+2*(3+1)+total {
		t.Errorf("%d storage operations for %d consents", n, total)
	}
	if runs != 3 {
		t.Errorf("%d runs, want 3 pages", runs)
	}
	ob, _ := e.b.census.get("ob")
	want := map[string]int64{consentAuthorized: 430, consentExpired: 3 + 4 + 1, consentPending: 7, consentDenied: 2, consentRevoked: 6}
	for s, n := range want {
		if ob.byState()[s] != n {
			t.Errorf("ob %s: %d, want %d", s, ob.byState()[s], n)
		}
	}
	if ob.Expiring7d != 10 {
		t.Errorf("ob expiring within 7 days: %d, want 10", ob.Expiring7d)
	}
	if ob2, _ := e.b.census.get("ob2"); ob2.byState()[consentRevoked] != 3 || ob2.total() != 3 {
		t.Errorf("ob2: %v", ob2.byState())
	}

	// Nothing until censusEvery after the end; then ob2's consents are gone.
	for i := range 3 {
		if err := e.s.Delete(context.Background(), consentKey("ob2", fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
		if err := e.b.unindexConsent(context.Background(), e.s.Storage, "ob2", fmt.Sprintf("r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	reads, done := e.ops(), e.b.census.snapshotDone()
	e.step(censusEvery - time.Second)
	if e.ops() != reads {
		t.Fatal("the census ran again before censusEvery")
	}
	for i := 0; e.b.census.snapshotDone().Equal(done); i++ {
		e.step(time.Second)
		if i > 10 {
			t.Fatal("the second census never ended")
		}
	}
	if _, ok := e.b.census.get("ob2"); ok {
		t.Error("ob2 is still counted with no consents")
	}
}

// snapshotDone is when the last whole census ended.
func (c *census) snapshotDone() time.Time {
	_, at := c.snapshot()
	return at
}

// On a performance standby the census reads nothing: the active node
// counts.
func TestConsentCensusOnlyOnTheActiveNode(t *testing.T) {
	e := newCensusEnv(t, consts.ReplicationPerformanceStandby)
	e.put(t, "ob", "a", 5, authorizedUntil(0))
	for range 4 {
		e.step(censusEvery)
	}
	if n := e.ops(); n != 0 {
		t.Errorf("the standby made %d storage reads", n)
	}
	if m, at := e.b.census.snapshot(); len(m) != 0 || !at.IsZero() {
		t.Errorf("the standby counted %v at %v", m, at)
	}
}

// The census exports its counts, and the consent counters every config
// with consents, zeros included; no consent id is in any label.
func TestConsentCensusMetrics(t *testing.T) {
	e := newCensusEnv(t, 0)
	e.put(t, "ob", "alice-", 2, authorizedUntil(2*24*time.Hour))
	e.put(t, "ob", "bob-", 1, withState(consentRevoked, 0))
	te := &testEnv{b: e.b, storage: e.s, clock: e.clock}
	fams := te.scrape(t, "metrics")
	if _, ok := fams["bankauth_consents"]; ok {
		t.Fatal("consent counts before the census")
	}
	e.step(censusFirstAfter)
	e.step(censusPagePause)
	fams = te.scrape(t, "metrics")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"bankauth_consents", map[string]string{"config": "ob", "state": "authorized"}, 2},
		{"bankauth_consents", map[string]string{"config": "ob", "state": "revoked"}, 1},
		{"bankauth_consents", map[string]string{"config": "ob", "state": "pending"}, 0},
		{"bankauth_consents_expiring_7d", map[string]string{"config": "ob"}, 2},
		{"bankauth_consent_revocations_total", map[string]string{"config": "ob"}, 0},
		{"bankauth_consent_refresh_failures_total", map[string]string{"config": "ob", "reason": "invalid_grant"}, 0},
		{"bankauth_consent_census_timestamp_seconds", nil, float64(e.clock.Now().Unix())},
	} {
		if got, ok := sample(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for name, mf := range fams {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if len(l.GetValue()) > 4 && (l.GetValue()[:5] == "alice" || l.GetValue()[:3] == "bob") {
					t.Errorf("%s has a consent id in label %s", name, l.GetName())
				}
			}
		}
	}
}

// A census that finds no consent plans no next walk and exports no census
// time (no counts to be stale): a mount without consents keeps no timer for
// it. A consent path used on the node wakes it, censusFirstAfter later.
func TestConsentCensusSleepsWithoutConsents(t *testing.T) {
	e := newCensusEnv(t, 0)
	e.step(censusFirstAfter)
	if n := e.ops(); n != 1 {
		t.Fatalf("%d storage operations for a census of nothing, want the list of consent/", n)
	}
	for range 8 {
		e.step(censusEvery)
	}
	if n := e.ops(); n != 1 || !e.b.census.snapshotDone().IsZero() {
		t.Fatalf("the census of nothing ran on: %d storage operations, census time %v", n, e.b.census.snapshotDone())
	}
	e.put(t, "ob", "alice", 1, authorizedUntil(0))
	e.b.consentsInUse()
	e.b.consentsInUse()
	e.step(censusFirstAfter - time.Second)
	if n := e.ops(); n != 1 {
		t.Fatalf("the census woke too early: %d storage operations", n)
	}
	e.step(time.Second)
	if ob, ok := e.b.census.get("ob"); !ok || ob.total() != 1 || e.b.census.snapshotDone().IsZero() {
		t.Errorf("after waking: %v %v, census time %v", ob.byState(), ok, e.b.census.snapshotDone())
	}
}
