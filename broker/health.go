package broker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
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

// health is a name's recent fetch failures. It has its own mutex: a config
// change may reset it while a fetch holds the name's lock.
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
func (h *health) failed(err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures++
	bound := min(FailureBackoffBase<<min(h.failures-1, 8), FailureBackoffMax)
	wait := bound*3/4 + rand.N(bound/4+1)
	h.err, h.retryAt = err, now.Add(wait)
	var ue *engine.UpstreamError
	var be *engine.BudgetError
	switch {
	case errors.As(err, &ue) && ue.RetryAt.After(h.retryAt):
		h.retryAt = ue.RetryAt
	case errors.As(err, &be) && be.RetryAt.After(h.retryAt):
		h.retryAt = be.RetryAt
	}
}

// reset forgets failures (after a success or a config change).
func (h *health) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err, h.retryAt, h.failures = nil, time.Time{}, 0
}

// backingOff returns the last failure and when the bank may be called again,
// if that is after now.
func (h *health) backingOff(now time.Time) (error, time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil || !now.Before(h.retryAt) {
		return nil, time.Time{}, false
	}
	return h.err, h.retryAt, true
}

// last returns the last failure (nil after a success) and when the bank may
// be called again.
func (h *health) last() (error, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err, h.retryAt
}

// retryTime is when the bank may be called again (zero when it may now).
func (h *health) retryTime() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.retryAt
}

// usableAt reports whether a token still has life left at now to be served
// when no fresher one can be had.
func usableAt(tok *engine.Token, now time.Time) bool {
	return tok != nil && now.Add(UsableMargin).Before(tok.ExpiresAt)
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
func staleWarning(tok *engine.Token, cause error, now time.Time) string {
	return fmt.Sprintf("serving the cached token (expires %s, %ds left) because no new one could be had: %v",
		tok.ExpiresAt.UTC().Format(time.RFC3339), int64(tok.ExpiresAt.Sub(now)/time.Second), cause)
}
