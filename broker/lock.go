package broker

import (
	"context"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Each name has a lock that a waiter can give up on (its request ended).
// Only names being fetched or changed need one, so the locks live in a
// gate allocated on the first acquire and dropped when its last holder or
// waiter leaves: 100,000 idle names hold no lock at all.

// gates guards every conn's gate pointer and each gate's refs.
type gates struct{ mu sync.Mutex }

// gate is one name's lock: holding it is the value in sem.
type gate struct {
	sem  chan struct{} // capacity 1
	refs int           // holders and waiters
}

// join returns c's gate, counting the caller in.
func (g *gates) join(c *conn) *gate { return g.joinSlot(&c.gate) }

// joinSlot returns the gate in *slot, creating it, counting the caller in.
func (g *gates) joinSlot(slot **gate) *gate {
	g.mu.Lock()
	defer g.mu.Unlock()
	if *slot == nil {
		*slot = &gate{sem: make(chan struct{}, 1)}
	}
	(*slot).refs++
	return *slot
}

// leave counts the caller out of c's gate, dropping it when nobody is left.
func (g *gates) leave(c *conn) { g.leaveSlot(&c.gate) }

// leaveSlot counts the caller out of the gate in *slot, dropping it when
// nobody is left.
func (g *gates) leaveSlot(slot **gate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if (*slot).refs--; (*slot).refs == 0 {
		*slot = nil
	}
}

// acquire takes c's lock, or gives up when ctx ends.
func (b *Broker) acquire(ctx context.Context, c *conn) error { return b.acquireSlot(ctx, &c.gate) }

// acquireSlot takes the lock whose gate lives in *slot, or gives up when
// ctx ends.
func (b *Broker) acquireSlot(ctx context.Context, slot **gate) error {
	g := b.gates.joinSlot(slot)
	select {
	case g.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		b.gates.leaveSlot(slot)
		return ctx.Err()
	}
}

// acquireWithin takes c's lock, or reports false once the clock says limit
// has passed (the error is ctx's when ctx ended first).
func (b *Broker) acquireWithin(ctx context.Context, c *conn, clock clockwork.Clock, limit time.Duration) (bool, error) {
	g := b.gates.join(c)
	select {
	case g.sem <- struct{}{}:
		return true, nil
	default:
	}
	t := clock.NewTimer(limit)
	defer t.Stop()
	select {
	case g.sem <- struct{}{}:
		return true, nil
	case <-t.Chan():
		b.gates.leave(c)
		return false, nil
	case <-ctx.Done():
		b.gates.leave(c)
		return false, ctx.Err()
	}
}

// release gives c's lock back.
func (b *Broker) release(c *conn) { b.releaseSlot(&c.gate) }

// releaseSlot gives back the lock whose gate lives in *slot.
func (b *Broker) releaseSlot(slot **gate) {
	b.gates.mu.Lock()
	g := *slot
	b.gates.mu.Unlock()
	<-g.sem
	b.gates.leaveSlot(slot)
}
