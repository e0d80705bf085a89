package broker

import (
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// conn is the in-memory state of one configured name. The hot path (a
// fresh token) loads state without locking; everything that talks to the
// bank or writes storage holds the name's lock (lock.go), so one name makes
// one bank request at a time however many readers wait.
//
// A broker holds one conn per configured name, so its size is the memory
// cost of a config: what is needed only while a name is busy (its lock,
// a failure backoff, a DPoP nonce, a request budget) is allocated then, and
// its token is kept compact (token.go).
type conn struct {
	name  string
	state atomic.Pointer[state]
	// gen counts the times the state was dropped (config changes). A state
	// loaded under an older generation is never served or stored.
	gen     atomic.Uint32
	fetches atomic.Uint32 // bank fetches started (numbers them)

	lastRead  atomic.Int64           // unix nanoseconds of the last read or forced refresh
	planned   atomic.Pointer[state]  // the state whose background refresh is decided
	dpopNonce atomic.Pointer[string] // the latest DPoP nonce the bank gave (RFC 9449)
	health    atomic.Pointer[health] // nil: no failure since the last success or config change
	budget    *bank.Budget           // guarded by the lock; outlives config changes
	stats     stats

	gate *gate // the lock, while held or awaited; guarded by the broker's gates mutex
	plan plan  // the planned background refresh; guarded by the scheduler's mutex
}

// state is what memory keeps of a connection between fetches: the token
// obtained under its config (none yet: tok.none()) and the few settings the
// read path needs. The config itself and a bank client are built from
// storage for each fetch (client.go), so 100,000 idle connections cost
// little. A state is never changed once published: a new token or config is
// a new state.
type state struct {
	tok memToken
	view
	gen uint32
	// fetchNo numbers the fetch that brought tok; 0 when it came from
	// storage.
	fetchNo uint32
}

func newConn(name string) *conn {
	c := &conn{name: name}
	c.plan.index = -1
	return c
}

// current returns the state if it belongs to the current generation.
func (c *conn) current() *state {
	s := c.state.Load()
	if s == nil || s.gen != c.gen.Load() {
		return nil
	}
	return s
}

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
	c.health.Store(nil)
}
