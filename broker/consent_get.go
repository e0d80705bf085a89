package broker

import (
	"context"
	"errors"
	"time"
)

// CachedConsent returns the consent's token when it is fresh in memory,
// without a lock or a storage round trip; ok is false otherwise (call
// ConsentToken). It records the read for background refresh.
func (b *Broker) CachedConsent(config, id string) (res Result, ok bool) {
	e := b.lookupConsent(config, id)
	if e == nil {
		return Result{}, false
	}
	now := b.clock.Now()
	e.touch(now)
	s := e.current()
	if s == nil || !s.tok.freshAt(now) {
		return Result{}, false
	}
	if e.planned.Load() != s {
		b.planConsent(e, s, now)
	}
	return Result{Token: s.tok.token(), Lease: s.lease}, true
}

// ConsentAccessToken returns the consent's current access token, as
// ConsentToken does (for a DPoP proof bound to it, say).
func (b *Broker) ConsentAccessToken(ctx context.Context, src ConsentSource, config, id string) (string, error) {
	res, err := b.ConsentToken(ctx, src, config, id)
	return res.Token.AccessToken, err
}

// ConsentToken returns a valid token for the consent: the one in memory or
// storage while it is fresh, else a renewed one (its rotated refresh token
// stored before it is handed out), else, while the bank fails, the stale
// one with a warning as long as it has life left. Concurrent readers of a
// stale token cause one renewal. Errors: NoConsentError, *ReauthError,
// NoConfigError, ErrReadOnly, *BackoffError, the source's and ctx's.
func (b *Broker) ConsentToken(ctx context.Context, src ConsentSource, config, id string) (Result, error) {
	return b.obtainConsent(ctx, src, config, id, false)
}

// RefreshConsent renews the consent's token whatever its age. Callers that
// force at the same moment share one renewal.
func (b *Broker) RefreshConsent(ctx context.Context, src ConsentSource, config, id string) (Result, error) {
	return b.obtainConsent(ctx, src, config, id, true)
}

func (b *Broker) obtainConsent(ctx context.Context, src ConsentSource, config, id string, force bool) (Result, error) {
	e := b.consentFor(config, id)
	now := b.clock.Now()
	e.touch(now)
	after := e.fetches.Load()
	if s := e.current(); !force && s != nil && s.tok.freshAt(now) {
		if e.planned.Load() != s {
			b.planConsent(e, s, now)
		}
		return Result{Token: s.tok.token(), Lease: s.lease}, nil
	}
	if err := b.acquireSlot(ctx, &e.gate); err != nil {
		return Result{}, err
	}
	defer b.releaseSlot(&e.gate)
	s, err := b.loadConsent(ctx, src, e)
	if err != nil {
		return Result{}, err
	}
	now = b.clock.Now()
	if s.tok.freshAt(now) && (!force || s.fetchNo > after) {
		if e.planned.Load() != s {
			b.planConsent(e, s, now)
		}
		return Result{Token: s.tok.token(), Lease: s.lease}, nil
	}
	if b.readOnly() {
		return Result{}, ErrReadOnly
	}
	if cause, retryAt, backing := backingOffOn(&e.health, now); backing {
		err = &BackoffError{Cause: cause, RetryAt: retryAt}
	} else {
		var ns *consentState
		if ns, err = b.renewConsent(ctx, src, e, s); err == nil {
			return Result{Token: ns.tok.token(), Lease: ns.lease}, nil
		}
		var se *StoreError
		if gone(err) || errors.As(err, &se) {
			return Result{}, err
		}
	}
	if now = b.clock.Now(); s.tok.usableAt(now) {
		var bo *BackoffError
		if !errors.As(err, &bo) {
			b.logger.Warn("serving a consent's cached token while its renewal fails", "config", e.config, "consent", e.id,
				"expires_at", s.tok.expiresAt(), "error", err)
		}
		return Result{Token: s.tok.token(), Lease: s.lease, Warning: "the token could not be refreshed: " + err.Error()}, nil
	}
	return Result{}, err
}

// gone reports whether err says the consent has no token to renew.
func gone(err error) bool {
	var re *ReauthError
	var nc NoConsentError
	var ncf NoConfigError
	return errors.As(err, &re) || errors.As(err, &nc) || errors.As(err, &ncf)
}

// loadConsent returns e's current state, loading it from the source when
// memory has none. The caller holds e's lock. A consent without a usable
// token keeps no state.
func (b *Broker) loadConsent(ctx context.Context, src ConsentSource, e *consent) (*consentState, error) {
	if s := e.current(); s != nil {
		return s, nil
	}
	gen := e.gen.Load()
	ct, err := src.LoadConsent(ctx, e.config, e.id)
	if err != nil {
		if gone(err) {
			b.removeConsent(e)
		}
		return nil, err
	}
	s := newConsentState(ct, gen, 0)
	e.state.Store(s) // of a dropped generation, it is never served
	return s, nil
}

// renewConsent asks the source for a renewed token and, unless the consent
// was dropped meanwhile, makes it the current one and plans its background
// refresh. The source stored it (and its rotated refresh token) before it
// returned. The caller holds e's lock.
func (b *Broker) renewConsent(ctx context.Context, src ConsentSource, e *consent, s *consentState) (*consentState, error) {
	no := e.fetches.Add(1)
	ct, err := src.RenewConsent(ctx, e.config, e.id, s.tok.access)
	if err != nil {
		var se *StoreError
		switch {
		case gone(err):
			b.removeConsent(e) // the bank hears no more of it until a new authorization
		case ctx.Err() == nil && !errors.As(err, &se):
			recordFailure(&e.health, err, b.clock.Now())
		}
		return nil, err
	}
	e.health.Store(nil)
	ns := newConsentState(ct, s.gen, no)
	if e.state.CompareAndSwap(s, ns) && e.gen.Load() == s.gen {
		b.planConsent(e, ns, b.clock.Now())
	}
	return ns, nil
}

// staleConsentRetry is when a failed background renewal of s is tried
// again: after the backoff, and never sooner than MinBackgroundLead.
func (b *Broker) staleConsentRetry(e *consent, s *consentState, lastTry time.Time) {
	at := lastTry.Add(MinBackgroundLead)
	if _, retryAt, backing := backingOffOn(&e.health, lastTry); backing {
		at = later(retryAt, at)
	}
	if e.current() == s && s.tok.usableAt(at) {
		b.sched.add(e, s, at.UnixNano())
	}
}
