package broker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// After a failed fetch a name leaves the bank alone for a short, growing,
// jittered while (or as long as the bank asked), so that readers and the
// Vault clients' own retries do not turn an outage into a flood.
const (
	FailureBackoffBase = 2 * time.Second
	FailureBackoffMax  = 30 * time.Second
)

// UsableMargin is the least life a token must have left to be served while
// the bank is failing.
const UsableMargin = time.Second

// health is a name's recent fetch failures, allocated at the first one and
// dropped at the next success or config change. It has its own mutex, not
// the name's lock: readers check the backoff without taking that lock.
type health struct {
	mu       sync.Mutex
	err      error     // last failure; nil after a success
	retryAt  time.Time // no bank request before this
	failures int       // consecutive failures
}

// failed records a failure at now and sets the backoff: doubling from
// FailureBackoffBase up to FailureBackoffMax, with jitter, or longer when
// the bank said when to come back (Retry-After) or the request budget is
// spent.
func (c *conn) failed(err error, now time.Time) { recordFailure(&c.health, err, now) }

// recordFailure is failed for the health in *hp.
func recordFailure(hp *atomic.Pointer[health], err error, now time.Time) {
	h := hp.Load()
	for h == nil {
		if h = (&health{}); !hp.CompareAndSwap(nil, h) {
			h = hp.Load()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures++
	bound := min(FailureBackoffBase<<min(h.failures-1, 8), FailureBackoffMax)
	wait := bound*3/4 + rand.N(bound/4+1)
	h.err, h.retryAt = err, now.Add(wait)
	var ue *bank.UpstreamError
	var be *bank.BudgetError
	switch {
	case errors.As(err, &ue) && ue.RetryAt.After(h.retryAt):
		h.retryAt = ue.RetryAt
	case errors.As(err, &be) && be.RetryAt.After(h.retryAt):
		h.retryAt = be.RetryAt
	}
}

// succeeded forgets failures.
func (c *conn) succeeded() { c.health.Store(nil) }

// backingOff returns the last failure and when the bank may be called again,
// if that is after now.
func (c *conn) backingOff(now time.Time) (error, time.Time, bool) {
	return backingOffOn(&c.health, now)
}

// backingOffOn is backingOff for the health in *hp.
func backingOffOn(hp *atomic.Pointer[health], now time.Time) (error, time.Time, bool) {
	h := hp.Load()
	if h == nil {
		return nil, time.Time{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil || !now.Before(h.retryAt) {
		return nil, time.Time{}, false
	}
	return h.err, h.retryAt, true
}

// lastFailure returns the last failure (nil after a success) and when the
// bank may be called again.
func (c *conn) lastFailure() (error, time.Time) {
	h := c.health.Load()
	if h == nil {
		return nil, time.Time{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err, h.retryAt
}

// retryTime is when the bank may be called again (zero when it may now).
func (c *conn) retryTime() time.Time {
	h := c.health.Load()
	if h == nil {
		return time.Time{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.retryAt
}

// BackoffError is the last failure, returned without calling the bank while
// the name backs off.
type BackoffError struct {
	Cause   error
	RetryAt time.Time
}

func (e *BackoffError) Error() string {
	return fmt.Sprintf("%v (bankauth backs off: no new bank request before %s)", e.Cause, e.RetryAt.UTC().Format(time.RFC3339))
}

func (e *BackoffError) Unwrap() error { return e.Cause }

// StaleWaitLimit is how long a reader holding a stale but valid token waits
// for another caller's bank request before it is served the cached token.
const StaleWaitLimit = 2 * time.Second

// busyError says a bank request for the name is taking long; the reader is
// served the cached token instead of waiting for it.
type busyError struct{}

func (busyError) Error() string {
	return fmt.Sprintf("a bank request for a new token is taking longer than %s", StaleWaitLimit)
}

// staleWarning is the warning a reader gets with a token served because no
// fresher one could be had.
func staleWarning(tok *memToken, cause error, now time.Time) string {
	exp := tok.expiresAt()
	return fmt.Sprintf("serving the cached token (expires %s, %ds left) because no new one could be had: %v",
		exp.Format(time.RFC3339), int64(exp.Sub(now)/time.Second), cause)
}
