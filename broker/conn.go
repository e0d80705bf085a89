package broker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/jonboulle/clockwork"
)

// conn is the in-memory state of one configured name. The hot path (a
// fresh token) loads state without locking; everything that talks to the
// bank or writes storage holds lock, so one name makes one bank request at
// a time however many readers wait.
type conn struct {
	name  string
	lock  chan struct{} // a mutex whose waiters can give up
	state atomic.Pointer[state]
	// gen counts the times the state was dropped (config changes). A state
	// loaded under an older generation is never served or stored.
	gen atomic.Uint64

	fetches   atomic.Uint64                // bank fetches started (numbers them)
	lastRead  atomic.Int64                 // unix nanoseconds of the last read or forced refresh
	planned   atomic.Pointer[engine.Token] // the token whose background refresh is decided
	dpopNonce atomic.Pointer[string]       // the latest DPoP nonce the bank gave (RFC 9449)
	health    health
	budget    *engine.Budget // guarded by lock; outlives config changes
	stats     stats
	item      *item // the planned background refresh; guarded by the scheduler's mutex
}

// state is what memory keeps of a connection between fetches: the token
// obtained under its config (nil: none yet) and the few settings the read
// path needs. The config itself and a bank client are built from storage
// for each fetch (client.go), so 100,000 idle connections cost little.
type state struct {
	tok *engine.Token
	view
	gen uint64
	// fetchNo numbers the fetch that brought tok; 0 when it came from
	// storage.
	fetchNo uint64
}

func newConn(name string) *conn { return &conn{name: name, lock: make(chan struct{}, 1)} }

// current returns the state if it belongs to the current generation.
func (c *conn) current() *state {
	s := c.state.Load()
	if s == nil || s.gen != c.gen.Load() {
		return nil
	}
	return s
}

// acquire takes the lock, or gives up when ctx ends.
func (c *conn) acquire(ctx context.Context) error {
	select {
	case c.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquireWithin takes the lock, or reports false once clock says limit has
// passed (the error is ctx's when ctx ended first).
func (c *conn) acquireWithin(ctx context.Context, clock clockwork.Clock, limit time.Duration) (bool, error) {
	select {
	case c.lock <- struct{}{}:
		return true, nil
	default:
	}
	t := clock.NewTimer(limit)
	defer t.Stop()
	select {
	case c.lock <- struct{}{}:
		return true, nil
	case <-t.Chan():
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (c *conn) release() { <-c.lock }

// touch records a read; at most one store a second on the hot path.
func (c *conn) touch(now time.Time) {
	if n := now.UnixNano(); n-c.lastRead.Load() > int64(time.Second) {
		c.lastRead.Store(n)
	}
}

// drop forgets the loaded settings and token: a new generation
// begins, and whatever was loaded or fetched under the old one is never
// served or stored. Safe without the lock.
func (c *conn) drop() {
	c.gen.Add(1)
	c.state.Store(nil)
	c.planned.Store(nil)
	c.health.reset()
}
