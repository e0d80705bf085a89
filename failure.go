package bankauth

import (
	"context"
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
	failureBackoffBase = 2 * time.Second
	failureBackoffMax  = 30 * time.Second
)

// usableMargin is the least life a token must have left to be served while
// the bank is failing.
const usableMargin = time.Second

// fetchHealth is a name's recent fetch failures. It has its own mutex:
// forget may reset it while a fetch holds the entry's lock.
type fetchHealth struct {
	mu       sync.Mutex
	err      error     // last failure; nil after a success
	failedAt time.Time // when it happened
	retryAt  time.Time // no bank request before this
	failures int       // consecutive failures
}

// failed records a failure at now and sets the backoff: doubling from
// failureBackoffBase up to failureBackoffMax, with jitter, or longer when the
// bank said when to come back (Retry-After) or the request budget is spent.
func (h *fetchHealth) failed(err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures++
	bound := min(failureBackoffBase<<min(h.failures-1, 8), failureBackoffMax)
	wait := bound*3/4 + rand.N(bound/4+1)
	h.err, h.failedAt, h.retryAt = err, now, now.Add(wait)
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
func (h *fetchHealth) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err, h.failedAt, h.retryAt, h.failures = nil, time.Time{}, time.Time{}, 0
}

// backingOff returns the last failure and when the bank may be called again,
// if that is after now.
func (h *fetchHealth) backingOff(now time.Time) (error, time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil || !now.Before(h.retryAt) {
		return nil, time.Time{}, false
	}
	return h.err, h.retryAt, true
}

// retryTime is when the bank may be called again (zero when it may now).
func (h *fetchHealth) retryTime() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.retryAt
}

// usableAt reports whether a token still has life left at now to be served
// when no fresher one can be had.
func usableAt(tok *engine.Token, now time.Time) bool {
	return tok != nil && now.Add(usableMargin).Before(tok.ExpiresAt)
}

// backoffError is the last failure, returned without calling the bank while
// the name backs off.
type backoffError struct {
	cause   error
	retryAt time.Time
}

func (e *backoffError) Error() string {
	return fmt.Sprintf("%v (bankauth backs off: no new bank request before %s)", e.cause, e.retryAt.UTC().Format(time.RFC3339))
}

func (e *backoffError) Unwrap() error { return e.cause }

// staleWaitLimit is how long a reader holding a stale but valid token waits
// for another caller's bank request before it is served the cached token.
const staleWaitLimit = 2 * time.Second

// busyError says a bank request for the name is taking long; the reader is
// served tok instead of waiting for it.
type busyError struct{ tok *engine.Token }

func (e *busyError) Error() string {
	return fmt.Sprintf("a bank request for a new token is taking longer than %s", staleWaitLimit)
}

// acquireOrServe takes the entry's lock. A reader whose cached token is stale
// but still valid waits at most staleWaitLimit for a bank request in
// progress (a slow or failing bank), then gets a *busyError carrying that
// token instead.
func (b *backend) acquireOrServe(ctx context.Context, e *entry, force bool) error {
	tok := e.token.Load()
	if force || !usableAt(tok, time.Now().Add(staleWaitLimit)) {
		return e.acquire(ctx)
	}
	waitCtx, cancel := context.WithTimeout(ctx, staleWaitLimit)
	defer cancel()
	err := e.acquire(waitCtx)
	if err != nil && ctx.Err() == nil {
		return &busyError{tok: tok}
	}
	return err
}

// staleWarning is the warning a reader gets with a token served because no
// fresher one could be had.
func staleWarning(tok *engine.Token, cause error, now time.Time) string {
	return fmt.Sprintf("serving the cached token (expires %s, %ds left) because no new one could be had: %v",
		tok.ExpiresAt.UTC().Format(time.RFC3339), int64(tok.ExpiresAt.Sub(now)/time.Second), cause)
}
