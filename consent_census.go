package bankauth

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/hashicorp/vault/sdk/logical"
)

// The consent census counts every config's consents per state, and those
// expiring within a week, for status/<config> and the metrics. Nothing is
// counted at mount time and nothing is kept per consent: a mount with a
// million stored consents starts as fast and as small as one with none.
// Instead a Job on the broker's one scheduler walks consent/ in the
// background, on the active node only:
//
//   - the first walk starts censusFirstAfter after the mount, then each
//     starts censusEvery after the previous one ended;
//   - a walk is paged: each run makes at most censusPageSize storage
//     operations (reads of consents, and the lists of consent/ and of one
//     config's ids), then the next run is censusPagePause later. That bounds
//     its cost at censusPageSize/censusPagePause storage operations a second
//     (400/s), whatever is stored: a million consents take about 42 minutes.
//   - a config's counts are published when its walk ends; configs whose
//     consents are all gone leave the counts when a whole walk ends, and
//     bankauth_consent_census_timestamp_seconds says when that was.
//   - a walk that finds no consent at all plans no next one: the census
//     sleeps, and a mount without consents keeps no timer for it, until a
//     consent path is used on this node (consentsInUse wakes it,
//     censusFirstAfter later).
//
// Configs come from the consent index's folders and ids from its pages
// (consent_index.go), a page of censusPageSize ids at a time: listing
// consent/ itself would make Vault walk every stored consent (its storage
// lists a prefix whole, sub-folders included), and the census holds no more
// than one page of ids.
const (
	censusFirstAfter = 5 * time.Minute
	censusEvery      = 15 * time.Minute
	censusPageSize   = 200
	censusPagePause  = 500 * time.Millisecond
	// consentExpiringWindow is "expiring soon": authorized consents whose
	// consent_expires_at falls within it count in consents_expiring_7d.
	consentExpiringWindow = 7 * 24 * time.Hour
)

// consentStates are the states the census counts, as reads show them.
var consentStates = [...]string{consentPending, consentAuthorized, consentDenied, consentExpired, consentRevoked}

// censusCounts are one config's consents by state at the end of a walk.
type censusCounts struct {
	States     [len(consentStates)]int64 // in consentStates' order
	Expiring7d int64                     // authorized, consent_expires_at within consentExpiringWindow
	At         time.Time                 // when the walk of the config ended
}

// byState is States keyed by state name.
func (c *censusCounts) byState() map[string]int64 {
	m := make(map[string]int64, len(consentStates))
	for i, s := range consentStates {
		m[s] = c.States[i]
	}
	return m
}

// total is the number of consents counted.
func (c *censusCounts) total() int64 {
	var n int64
	for _, v := range c.States {
		n += v
	}
	return n
}

// censusState is the state a consent counts under at now: the state a read
// shows, and expired for an authorized consent past its consent_expires_at
// (the bank will refuse its refresh token).
func censusState(r *consentRecord, now time.Time) string {
	s := r.shownState(now)
	if s == consentAuthorized && !r.ConsentExpiresAt.IsZero() && !now.Before(r.ConsentExpiresAt) {
		return consentExpired
	}
	return s
}

// add counts r at now.
func (c *censusCounts) add(r *consentRecord, now time.Time) {
	s := censusState(r, now)
	for i, name := range consentStates {
		if name == s {
			c.States[i]++
		}
	}
	if s == consentAuthorized && !r.ConsentExpiresAt.IsZero() && r.ConsentExpiresAt.Sub(now) <= consentExpiringWindow {
		c.Expiring7d++
	}
}

// census is the published counts and the walk in progress. The walk's
// fields are used by the job alone (the scheduler runs it once at a time);
// mu guards what readers see.
type census struct {
	job    *broker.Job
	asleep atomic.Bool // a walk may plan none: consent paths plan one (wakeCensus)

	mu        sync.Mutex
	published map[string]*censusCounts
	doneAt    time.Time // when the last whole walk that found consents ended
	ops       uint64    // storage operations made by walks (tests)

	walking bool
	todo    []string        // configs left to walk
	config  string          // the config being walked
	ids     string          // ids of the current index page not yet read, "\n"-separated
	after   string          // the last id taken from the index; the next page starts after it
	more    bool            // the index may hold ids after after
	cur     *censusCounts   // its counts so far; nil between configs
	seen    map[string]bool // configs walked in this walk
}

// planCensus plans the first walk, censusFirstAfter from now.
func (b *backend) planCensus() {
	b.census.job = broker.NewJob("consent census", b.censusRun)
	b.broker.PlanJob(b.census.job, censusFirstAfter)
}

// wakeCensus plans a walk censusFirstAfter from now if the census may
// sleep (a walk looking for consents is under way, or found none), unless
// one is planned. Cheap enough for every consent request: one atomic load
// while the census is awake.
func (b *backend) wakeCensus() {
	if b.census.asleep.Load() && b.census.asleep.CompareAndSwap(true, false) {
		b.broker.PlanJobUnlessPlanned(b.census.job, censusFirstAfter)
	}
}

// censusRun is one run of the census job: a page of the walk on the
// active node. It returns when to run next.
func (b *backend) censusRun(ctx context.Context) time.Duration {
	c := &b.census
	if b.storageReadOnly() {
		c.reset() // the active node counts; look again later, in case this node becomes it
		return censusEvery
	}
	next, err := c.step(ctx, b.storage, b.clock.Now())
	if err != nil {
		if ctx.Err() == nil {
			b.Logger().Warn("consent census failed; it starts again later", "error", err.Error())
		}
		c.asleep.Store(false)
		c.reset()
		return censusEvery
	}
	return next
}

// step walks one page: at most censusPageSize storage operations.
func (c *census) step(ctx context.Context, s logical.Storage, now time.Time) (time.Duration, error) {
	budget := censusPageSize
	op := func() {
		budget--
		c.mu.Lock()
		c.ops++
		c.mu.Unlock()
	}
	if !c.walking {
		// From here a consent path used on this node plans a walk, in case
		// this one finds nothing and plans none: no consent written
		// meanwhile is missed.
		c.asleep.Store(true)
		configs, err := s.List(ctx, consentIndexPrefix)
		op()
		if err != nil {
			return 0, err
		}
		c.todo = c.todo[:0]
		for _, k := range configs {
			if name, ok := strings.CutSuffix(k, "/"); ok && name != "" {
				c.todo = append(c.todo, name)
			}
		}
		c.walking, c.seen = true, map[string]bool{}
	}
	for budget > 0 {
		if c.cur == nil {
			if len(c.todo) == 0 {
				found := len(c.seen) > 0
				c.finish(now)
				if !found {
					return 0, nil // nothing to count: sleep until a consent path is used
				}
				c.asleep.Store(false)
				return censusEvery, nil
			}
			c.config, c.todo = c.todo[0], c.todo[1:]
			c.cur, c.ids, c.after, c.more = &censusCounts{}, "", "", true
			continue
		}
		if c.ids == "" && c.more {
			ids, err := listConsentIDs(ctx, s, c.config, c.after, censusPageSize)
			op()
			op() // the index directory and (mostly) one page
			if err != nil {
				return 0, err
			}
			c.more = len(ids) == censusPageSize
			if len(ids) > 0 {
				c.after = ids[len(ids)-1]
			}
			c.ids = strings.Join(ids, "\n")
		}
		for budget > 0 && c.ids != "" {
			var id string
			id, c.ids, _ = strings.Cut(c.ids, "\n")
			if strings.Contains(id, "/") {
				continue
			}
			rec, err := readConsent(ctx, s, c.config, id)
			op()
			if err != nil {
				return 0, err
			}
			if rec != nil {
				c.cur.add(rec, now)
			}
		}
		if c.ids == "" && !c.more {
			if c.cur.total() > 0 {
				c.publish(now)
			} else {
				c.cur = nil // an index emptied by deletes: no consents to count
			}
		}
	}
	return censusPagePause, nil
}

// publish makes the walked config's counts visible.
func (c *census) publish(now time.Time) {
	c.cur.At = now
	c.mu.Lock()
	if c.published == nil {
		c.published = map[string]*censusCounts{}
	}
	c.published[c.config] = c.cur
	c.mu.Unlock()
	c.seen[c.config] = true
	c.cur, c.ids = nil, ""
}

// finish ends a whole walk: configs it did not find leave the counts. A
// walk that found none leaves no census time either (no counts to be
// stale).
func (c *census) finish(now time.Time) {
	c.mu.Lock()
	for name := range c.published {
		if !c.seen[name] {
			delete(c.published, name)
		}
	}
	c.doneAt = now
	if len(c.seen) == 0 {
		c.doneAt = time.Time{}
	}
	c.mu.Unlock()
	c.walking, c.seen = false, nil
}

// reset abandons the walk in progress; published counts stay.
func (c *census) reset() {
	c.walking, c.todo, c.cur, c.ids, c.after, c.more, c.seen = false, nil, nil, "", "", false, nil
}

// get returns config's counts from the last walk that reached it.
func (c *census) get(config string) (censusCounts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.published[config]; p != nil {
		return *p, true
	}
	return censusCounts{}, false
}

// snapshot returns every config's counts and when the last whole walk
// ended (zero before the first).
func (c *census) snapshot() (map[string]censusCounts, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]censusCounts, len(c.published))
	for k, v := range c.published {
		out[k] = *v
	}
	return out, c.doneAt
}
