package broker

import (
	"container/heap"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
)

// MinBackgroundLead is the least time between a token's arrival and its
// background refresh, and between two background fetches of a name. A
// token whose refresh point comes sooner (a bank granting a few seconds, an
// expiry close to now through clock skew) is not refreshed in the
// background at all: readers fetch it when they need it.
const MinBackgroundLead = 5 * time.Second

// minRefreshLead is the least time before a token's stale point at which
// its background refresh runs.
const minRefreshLead = 500 * time.Millisecond

// maxParallelRefreshes bounds the background refreshes running at once.
const maxParallelRefreshes = 8

// RefreshPoint is when a token is renewed in the background: a tenth of its
// life before it stops being handed out (at 70% of its life), so the new
// token is in place before any reader sees the old one stale.
func RefreshPoint(tok *engine.Token) time.Time {
	lead := max(tok.Lifetime()/10, minRefreshLead)
	return tok.StaleAt().Add(-lead)
}

// item is one planned background refresh: of tok, c's token when planned.
type item struct {
	at    time.Time
	c     *conn
	tok   *engine.Token
	index int
}

type queue []*item

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i]; q[i].index = i; q[j].index = j }
func (q *queue) Push(x any)        { it := x.(*item); it.index = len(*q); *q = append(*q, it) }
func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	it.index = -1
	return it
}

// scheduler runs every background refresh of a broker from one goroutine
// and one timer, over a queue ordered by refresh time (at most one entry
// per name); refreshes themselves run on at most maxParallelRefreshes
// goroutines, so one slow bank holds up no other.
type scheduler struct {
	b      *Broker
	mu     sync.Mutex
	q      queue
	closed bool
	busy   int        // refreshes taken from the queue and not finished
	idle   *sync.Cond // signalled when busy drops
	wake   chan struct{}
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{}
}

func newScheduler(b *Broker) *scheduler {
	ctx, stop := context.WithCancel(context.Background())
	s := &scheduler{b: b, wake: make(chan struct{}, 1), ctx: ctx, stop: stop, slots: make(chan struct{}, maxParallelRefreshes)}
	s.idle = sync.NewCond(&s.mu)
	s.wg.Add(1)
	go s.loop()
	return s
}

// plan decides the background refresh of s's token, c's current one:
// scheduled at its refresh point, or none when background refresh is off,
// not possible on this broker, or the token is too short-lived for it.
func (b *Broker) plan(c *conn, s *state, now time.Time) {
	c.planned.Store(s.tok)
	if s.tok == nil || s.idle <= 0 || b.store == nil {
		return
	}
	at := RefreshPoint(s.tok)
	if at.Sub(now) < MinBackgroundLead {
		b.sched.cancel(c)
		return
	}
	b.sched.add(c, s.tok, at)
}

// add plans the refresh of tok at at, replacing c's earlier plan.
func (s *scheduler) add(c *conn, tok *engine.Token, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if it := c.item; it != nil {
		it.at, it.tok = at, tok
		heap.Fix(&s.q, it.index)
	} else {
		c.item = &item{at: at, c: c, tok: tok}
		heap.Push(&s.q, c.item)
	}
	if c.item.index == 0 {
		s.poke()
	}
}

// cancel drops c's planned refresh, if any.
func (s *scheduler) cancel(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := c.item; it != nil {
		heap.Remove(&s.q, it.index)
		c.item = nil
	}
}

// poke wakes the loop to look at the queue again. The caller holds mu.
func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Planned returns how many background refreshes are planned.
func (b *Broker) Planned() int {
	b.sched.mu.Lock()
	defer b.sched.mu.Unlock()
	return len(b.sched.q)
}

// WaitBackground waits until no background refresh is due at the clock's
// current time and none is running: tests step a fake clock, then call it.
func (b *Broker) WaitBackground() {
	s := b.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed && (s.busy > 0 || len(s.q) > 0 && !s.q[0].at.After(b.clock.Now())) {
		s.poke()
		s.idle.Wait()
	}
}

func (s *scheduler) loop() {
	defer s.wg.Done()
	clock := s.b.clock
	for {
		s.mu.Lock()
		now := clock.Now()
		var due []*item
		for len(s.q) > 0 && !s.q[0].at.After(now) {
			it := heap.Pop(&s.q).(*item)
			it.c.item = nil
			due = append(due, it)
		}
		s.busy += len(due)
		var wait time.Duration = -1
		if len(s.q) > 0 {
			wait = s.q[0].at.Sub(now)
		}
		s.mu.Unlock()

		for _, it := range due {
			select {
			case s.slots <- struct{}{}:
			case <-s.ctx.Done():
				s.finished(len(due))
				return
			}
			s.wg.Add(1)
			go func(it *item) {
				defer s.wg.Done()
				defer func() { <-s.slots; s.finished(1) }()
				s.b.refreshInBackground(s.ctx, it.c, it.tok)
			}(it)
			due = due[1:]
		}

		var fire <-chan time.Time
		stopTimer := func() bool { return false }
		if wait >= 0 {
			t := clock.NewTimer(wait)
			fire, stopTimer = t.Chan(), t.Stop
		}
		select {
		case <-s.wake:
		case <-fire:
		case <-s.ctx.Done():
			stopTimer()
			return
		}
		stopTimer()
	}
}

// finished records that n refreshes ended (or were never started).
func (s *scheduler) finished(n int) {
	s.mu.Lock()
	s.busy -= n
	s.mu.Unlock()
	s.idle.Broadcast()
}

// close stops the loop, cancels running refreshes and waits for them.
func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	s.q = nil
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
	s.idle.Broadcast()
}

// refreshInBackground renews tok if it is still c's token and was read
// within the config's background_refresh_idle.
func (b *Broker) refreshInBackground(ctx context.Context, c *conn, tok *engine.Token) {
	if err := c.acquire(ctx); err != nil {
		return
	}
	defer c.release()
	s := c.current()
	if s == nil || s.tok != tok {
		return // renewed by a reader, or dropped by a config change
	}
	now := b.clock.Now()
	idle := s.idle
	if last := time.Unix(0, c.lastRead.Load()); now.Sub(last) > idle {
		b.logger.Debug("background refresh: token not read recently, letting it go stale", "config", c.name,
			"last_read", last.UTC(), "idle", idle)
		c.planned.CompareAndSwap(tok, nil) // a read of the still fresh token plans again
		return
	}
	if b.readOnly() {
		return // decided for this token: the active node refreshes
	}
	if _, retryAt, backing := c.health.backingOff(now); backing {
		b.retryLater(c, tok, retryAt, now)
		return
	}
	if _, err := b.renew(ctx, b.store, c, s, nil); err != nil {
		b.logger.Warn("background refresh failed", "config", c.name, "provider", s.provider, "error", err)
		// Storage errors cross gRPC as text, hence the match.
		if !strings.Contains(err.Error(), ErrReadOnly.Error()) {
			b.retryLater(c, tok, c.health.retryTime(), now)
		}
		return
	}
	b.lag(b.clock.Since(RefreshPoint(tok)))
}

// retryLater plans another background try for tok after a failure, when
// the backoff allows and never sooner than MinBackgroundLead after the last
// try, while the token is still worth renewing.
func (b *Broker) retryLater(c *conn, tok *engine.Token, retryAt, lastTry time.Time) {
	at := later(retryAt, lastTry.Add(MinBackgroundLead))
	if cur := c.current(); cur != nil && cur.tok == tok && usableAt(tok, at) {
		b.sched.add(c, tok, at)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
