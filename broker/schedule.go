package broker

import (
	"container/heap"
	"context"
	"runtime"
	"strings"
	"sync"
	"time"
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

// refreshPoint is when a token is renewed in the background, in unix
// nanoseconds: a tenth of its life before it stops being handed out (at 70%
// of its life), so the new token is in place before any reader sees the old
// one stale.
func (t *memToken) refreshPoint() int64 {
	lead := max((t.expires-t.obtained)/10, int64(minRefreshLead))
	return t.staleAt() - lead
}

// plan is a task's place in the scheduler's queue: its work on of (a
// conn's *state, a consent's *consentState), due at at (unix nanoseconds).
// index is -1 when none is planned.
type plan struct {
	at    int64
	of    any
	index int
}

// task is what the one scheduler runs: a connection's or a consent's
// background refresh, or the removal of an expired consent attempt. Each
// task has at most one place in the queue.
type task interface {
	slot() *plan
	// run does the planned work on of; ctx ends when the broker closes.
	run(ctx context.Context, b *Broker, of any)
	// label names the task in logs (never a secret).
	label() string
}

func (c *conn) slot() *plan   { return &c.plan }
func (c *conn) label() string { return c.name }
func (c *conn) run(ctx context.Context, b *Broker, of any) {
	b.refreshInBackground(ctx, refresh{c, of.(*state)})
}

type queue []task

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].slot().at < q[j].slot().at }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].slot().index, q[j].slot().index = i, j
}
func (q *queue) Push(x any) { t := x.(task); t.slot().index = len(*q); *q = append(*q, t) }
func (q *queue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	t.slot().index = -1
	return t
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
	sweep  *attemptSweep // the periodic attempt sweep, if any; not counted by Planned
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
	c.planned.Store(s)
	if s.tok.none() || s.idleSecs <= 0 || b.store == nil {
		return
	}
	at := s.tok.refreshPoint()
	if at-now.UnixNano() < int64(MinBackgroundLead) {
		b.sched.cancel(c)
		return
	}
	b.sched.add(c, s, at)
}

// add plans t's work on of at at (unix nanoseconds), replacing t's
// earlier plan.
func (s *scheduler) add(t task, of any, at int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	p := t.slot()
	p.at, p.of = at, of
	if p.index >= 0 {
		heap.Fix(&s.q, p.index)
	} else {
		heap.Push(&s.q, t)
	}
	if p.index == 0 {
		s.poke()
	}
}

// cancel drops t's planned work, if any.
func (s *scheduler) cancel(t task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := t.slot(); p.index >= 0 && !s.closed {
		heap.Remove(&s.q, p.index)
		p.of = nil
	}
}

// poke wakes the loop to look at the queue again. The caller holds mu.
func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Planned returns how many background tasks are planned (refreshes and
// attempt removals; the periodic attempt sweep not counted).
func (b *Broker) Planned() int {
	b.sched.mu.Lock()
	defer b.sched.mu.Unlock()
	n := len(b.sched.q)
	if b.sched.sweep != nil && b.sched.sweep.plan.index >= 0 {
		n--
	}
	return n
}

// WaitBackground waits until no background refresh is due at the clock's
// current time and none is running: tests step a fake clock, then call it.
func (b *Broker) WaitBackground() {
	s := b.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed && (s.busy > 0 || len(s.q) > 0 && s.q[0].slot().at <= b.clock.Now().UnixNano()) {
		s.poke()
		s.idle.Wait()
	}
}

func (s *scheduler) loop() {
	defer s.wg.Done()
	clock := s.b.clock
	for {
		s.mu.Lock()
		now := clock.Now().UnixNano()
		var due []dueTask
		for len(s.q) > 0 && s.q[0].slot().at <= now {
			t := heap.Pop(&s.q).(task)
			p := t.slot()
			due = append(due, dueTask{t, p.of})
			p.of = nil
		}
		s.busy += len(due)
		var wait time.Duration = -1
		if len(s.q) > 0 {
			wait = time.Duration(s.q[0].slot().at - now)
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
			go func(d dueTask) {
				defer s.wg.Done()
				defer func() { <-s.slots; s.finished(1) }()
				defer s.b.recoverBackground(d.t.label())
				d.t.run(s.ctx, s.b, d.of)
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

// dueTask is a task taken from the queue with what it was planned for.
type dueTask struct {
	t  task
	of any
}

// refresh is one due background refresh: of state of, c's state when it
// was planned.
type refresh struct {
	c  *conn
	of *state
}

// refreshInBackground renews r's token if it is still its conn's token and
// was read within the config's background_refresh_idle.
func (b *Broker) refreshInBackground(ctx context.Context, r refresh) {
	c := r.c
	if err := b.acquire(ctx, c); err != nil {
		return
	}
	defer b.release(c)
	s := c.current()
	if s == nil || s != r.of {
		return // renewed by a reader, or dropped by a config change
	}
	now := b.clock.Now()
	idle := s.idle()
	if last := time.Unix(0, c.lastRead.Load()); now.Sub(last) > idle {
		b.logger.Debug("background refresh: token not read recently, letting it go stale", "config", c.name,
			"last_read", last.UTC(), "idle", idle)
		c.planned.CompareAndSwap(s, nil) // a read of the still fresh token plans again
		return
	}
	if b.readOnly() {
		return // decided for this token: the active node refreshes
	}
	if _, retryAt, backing := c.backingOff(now); backing {
		b.retryLater(c, s, retryAt, now)
		return
	}
	if _, err := b.renew(ctx, b.store, c, s, nil); err != nil {
		b.logger.Warn("background refresh failed", "config", c.name, "error", err)
		// Storage errors cross gRPC as text, hence the match.
		if !strings.Contains(err.Error(), ErrReadOnly.Error()) {
			b.retryLater(c, s, c.retryTime(), now)
		}
		return
	}
	b.lag(b.clock.Since(time.Unix(0, s.tok.refreshPoint())))
}

// retryLater plans another background try for s's token after a failure,
// when the backoff allows and never sooner than MinBackgroundLead after the
// last try, while the token is still worth renewing.
func (b *Broker) retryLater(c *conn, s *state, retryAt, lastTry time.Time) {
	at := later(retryAt, lastTry.Add(MinBackgroundLead))
	if c.current() == s && s.tok.usableAt(at) {
		b.sched.add(c, s, at.UnixNano())
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// recoverBackground, deferred in a background refresh, keeps a panic (a
// defect) from ending the plugin process: it is logged with the config's
// name and, when the runtime made it, the panic's text (any other value
// may hold a bank's answer), and counted.
func (b *Broker) recoverBackground(name string) {
	r := recover()
	if r == nil {
		return
	}
	what := "a panic"
	if re, ok := r.(runtime.Error); ok {
		what = re.Error()
	}
	b.logger.Error("recovered from a panic in a background refresh", "config", name, "panic", what)
	b.panicked()
}
