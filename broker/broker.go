package broker

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/go-hclog"
	"github.com/jonboulle/clockwork"
)

// Options configure a Broker. Only Store is needed for background refresh;
// the rest have working defaults.
type Options struct {
	// Clock tells time and makes the timers; default the real clock.
	Clock clockwork.Clock
	// Logger receives one line per notable lifecycle event; default none.
	Logger hclog.Logger
	// Store is the mount's storage, used by background refreshes (requests
	// bring their own). Nil turns background refresh off.
	Store Store
	// ReadOnly reports whether this node must not write storage
	// (performance standby, DR secondary): it then never refreshes in the
	// background, and a read needing a new token gets ErrReadOnly before the
	// bank is asked.
	ReadOnly func() bool
	// RefreshLag is told how late each successful background refresh
	// stored its new token, past its planned refresh point.
	RefreshLag func(time.Duration)
	// Consents is the mount's consents (storage and bank), used by
	// background refreshes of consent tokens and removal of expired
	// attempts (requests bring their own). Nil turns both off.
	Consents ConsentSource
	// AttemptSweep is how long after PlanAttemptSweep the scheduler asks
	// Consents to remove expired attempts that no planned removal covers,
	// and between such sweeps while any are left; 0: never.
	AttemptSweep time.Duration
	// Panicked is told of each panic recovered in a background refresh (a
	// defect: the plugin process, and every mount it serves, keeps going).
	Panicked func()
}

// Broker owns every connection's token lifecycle on one mount. It is safe
// for concurrent use.
type Broker struct {
	clock    clockwork.Clock
	logger   hclog.Logger
	store    Store
	readOnly func() bool
	lag      func(time.Duration)
	panicked func()

	mu    sync.RWMutex
	conns map[string]*conn // only names whose config exists (or is being written)
	// epoch counts config changes of any name (Change, Remove, Forget): a
	// config read before a change is not used after it.
	epoch atomic.Uint64

	consentSrc ConsentSource
	sweepEvery time.Duration
	cmu        sync.RWMutex
	consents   consents // consents that were read (consent.go)

	gates gates // the names' and consents' locks (lock.go)
	sched *scheduler
}

// New returns a Broker and starts its background refresh scheduler; stop
// it with Close.
func New(opts Options) *Broker {
	b := &Broker{clock: opts.Clock, logger: opts.Logger, store: opts.Store, readOnly: opts.ReadOnly,
		lag: opts.RefreshLag, panicked: opts.Panicked, conns: map[string]*conn{},
		consentSrc: opts.Consents, consents: consents{}, sweepEvery: opts.AttemptSweep}
	if b.clock == nil {
		b.clock = clockwork.NewRealClock()
	}
	if b.logger == nil {
		b.logger = hclog.NewNullLogger()
	}
	if b.readOnly == nil {
		b.readOnly = func() bool { return false }
	}
	if b.lag == nil {
		b.lag = func(time.Duration) {}
	}
	if b.panicked == nil {
		b.panicked = func() {}
	}
	b.sched = newScheduler(b)
	return b
}

// Close stops background refreshes, cancelling those running and waiting
// for them.
func (b *Broker) Close() {
	b.sched.close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.drop()
	}
	b.forgetAllConsents()
}

// lookup returns the state of name, or nil; it never creates one.
func (b *Broker) lookup(name string) *conn {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.conns[name]
}

// connFor returns the state of a configured name, creating it once storage
// shows the config exists: names nobody configured get no state. When it
// created the state it returns the config it read too (for load, saving a
// round trip), unless a config changed meanwhile.
func (b *Broker) connFor(ctx context.Context, st Store, name string) (*conn, *bank.Config, error) {
	if c := b.lookup(name); c != nil {
		return c, nil, nil
	}
	epoch := b.epoch.Load()
	cfg, err := st.Config(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return nil, nil, NoConfigError(name)
	}
	c, created := b.create(name)
	if !created || b.epoch.Load() != epoch {
		cfg = nil
	}
	return c, cfg, nil
}

// create returns name's state, creating it (created true) if there is none.
func (b *Broker) create(name string) (c *conn, created bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c = b.conns[name]; c == nil {
		// A name cut from a request path would keep the whole path alive.
		name = strings.Clone(name)
		c, created = newConn(name), true
		b.conns[name] = c
	}
	return c, created
}

// remove drops name's state if it is still c.
func (b *Broker) remove(name string, c *conn) {
	b.mu.Lock()
	if b.conns[name] == c {
		delete(b.conns, name)
	}
	b.mu.Unlock()
	b.sched.cancel(c)
	c.drop()
}

// Change runs write, which changes name's config in storage, while no fetch
// of name runs, then drops what memory holds for name (settings, token,
// backoff; the request budget and counters stay), whether or not
// write succeeded: once storage may hold a new config, memory never serves
// the old one. State Change had to create for it is not kept: the next
// read creates it if the config exists.
func (b *Broker) Change(ctx context.Context, name string, write func() error) error {
	c, created := b.create(name)
	if err := b.acquire(ctx, c); err != nil {
		return err
	}
	defer b.release(c)
	err := write()
	b.epoch.Add(1)
	b.forgetConsents(name)
	if created {
		b.remove(name, c)
	} else {
		b.sched.cancel(c)
		c.drop()
	}
	return err
}

// Remove runs write, which deletes name's config from storage, while no
// fetch of name runs, then forgets name entirely (its counters and request
// budget included), whether or not write succeeded.
func (b *Broker) Remove(ctx context.Context, name string, write func() error) error {
	c, _ := b.create(name)
	if err := b.acquire(ctx, c); err != nil {
		return err
	}
	defer b.release(c)
	err := write()
	b.epoch.Add(1)
	b.forgetConsents(name)
	b.remove(name, c)
	return err
}

// Forget drops what memory holds for name without waiting for a fetch in
// flight (another node changed storage): that fetch neither stores nor
// serves its token.
func (b *Broker) Forget(name string) {
	b.epoch.Add(1)
	b.forgetConsents(name)
	if c := b.lookup(name); c != nil {
		b.sched.cancel(c)
		c.drop()
	}
}

// ForgetAll is Forget for every name (a profile changed on another node).
func (b *Broker) ForgetAll() {
	b.epoch.Add(1)
	b.forgetAllConsents()
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, c := range b.conns {
		b.sched.cancel(c)
		c.drop()
	}
}

// Snapshot returns what this node knows of name; false if it holds no
// state for it.
func (b *Broker) Snapshot(name string) (Snapshot, bool) {
	c := b.lookup(name)
	if c == nil {
		return Snapshot{}, false
	}
	return c.snapshot(true), true
}

// Each calls fn with every name that has state, in name order, and its
// snapshot; brief calls it without the per-step request table.
func (b *Broker) Each(brief bool, fn func(name string, s Snapshot)) {
	b.mu.RLock()
	list := make([]*conn, 0, len(b.conns))
	for _, c := range b.conns {
		list = append(list, c)
	}
	b.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	for _, c := range list {
		fn(c.name, c.snapshot(!brief))
	}
}

// Len returns how many names have state.
func (b *Broker) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.conns)
}

// load returns c's current state, loading settings and stored token when
// memory has none. The caller holds c's lock. A stored token obtained for
// another version of the config (its ConfigKey) is never served. cfg, when
// not nil, was read from storage just before. load returns the config it
// used when it loaded (nil when the state was in memory already).
func (b *Broker) load(ctx context.Context, st Store, c *conn, cfg *bank.Config) (*state, *bank.Config, error) {
	if s := c.current(); s != nil {
		return s, nil, nil
	}
	gen := c.gen.Load()
	if cfg == nil {
		var err error
		if cfg, err = b.readConfig(ctx, st, c); err != nil {
			return nil, nil, err
		}
	}
	tok, err := st.Token(ctx, c.name)
	if err != nil {
		return nil, nil, err
	}
	if tok != nil && tok.ConfigKey != cfg.CacheKey() {
		b.logger.Info("stored token was obtained for another version of the config; not serving it", "config", c.name)
		tok = nil
	}
	s := &state{tok: compact(tok), view: viewOf(cfg), gen: gen}
	if !c.state.CompareAndSwap(nil, s) {
		return nil, nil, errConfigChanged
	}
	if c.gen.Load() != gen { // dropped while loading: what was read may be old
		c.state.CompareAndSwap(s, nil)
		return nil, nil, errConfigChanged
	}
	return s, cfg, nil
}

// replace makes next, from fetch number no under a config seen as v, the
// token of s, unless the state was dropped or replaced meanwhile; it
// returns the new state, or nil.
func (c *conn) replace(s *state, next *bank.Token, no uint32, v view) *state {
	ns := &state{tok: compact(next), view: v, gen: s.gen, fetchNo: no}
	if !c.state.CompareAndSwap(s, ns) || c.gen.Load() != s.gen {
		return nil
	}
	return ns
}
