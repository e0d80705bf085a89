package broker

import (
	"context"
	"strings"
	"time"
)

// planConsent decides the background refresh of s, e's current state: at
// its refresh point (as a connection's token), or none when the config's
// background_refresh_idle is off, there is no refresh token, the broker has
// no ConsentSource, or the token is too short-lived.
func (b *Broker) planConsent(e *consent, s *consentState, now time.Time) {
	e.planned.Store(s)
	if s.tok.none() || !s.tok.refreshable || s.idleSecs <= 0 || b.consentSrc == nil {
		return
	}
	at := s.tok.refreshPoint()
	if at-now.UnixNano() < int64(MinBackgroundLead) {
		b.sched.cancel(e)
		return
	}
	b.sched.add(e, s, at)
}

// refreshConsentInBackground renews s, e's token when it was planned, if it
// still is and was read within background_refresh_idle.
func (b *Broker) refreshConsentInBackground(ctx context.Context, e *consent, s *consentState) {
	if err := b.acquireSlot(ctx, &e.gate); err != nil {
		return
	}
	defer b.releaseSlot(&e.gate)
	if e.current() != s {
		return // renewed by a reader, or dropped
	}
	now := b.clock.Now()
	if last := time.Unix(0, e.lastRead.Load()); now.Sub(last) > s.idle() {
		b.logger.Debug("background refresh: consent token not read recently, letting it go stale",
			"config", e.config, "consent", e.id, "last_read", last.UTC())
		e.planned.CompareAndSwap(s, nil) // a read of the still fresh token plans again
		return
	}
	if b.readOnly() {
		return
	}
	if _, _, backing := backingOffOn(&e.health, now); backing {
		b.staleConsentRetry(e, s, now)
		return
	}
	if _, err := b.renewConsent(ctx, b.consentSrc, e, s); err != nil {
		b.logger.Warn("background refresh of a consent token failed", "config", e.config, "consent", e.id, "error", err)
		if !gone(err) && !strings.Contains(err.Error(), ErrReadOnly.Error()) {
			b.staleConsentRetry(e, s, now)
		}
		return
	}
	b.lag(b.clock.Since(time.Unix(0, s.tok.refreshPoint())))
}

// attemptExpiry is a planned removal of a consent's authorization attempt
// at its expiry: it lives in the scheduler's queue only, until then.
type attemptExpiry struct {
	config, id string
	plan       plan
}

func (a *attemptExpiry) slot() *plan   { return &a.plan }
func (a *attemptExpiry) label() string { return a.config + "/" + a.id }
func (a *attemptExpiry) run(ctx context.Context, b *Broker, _ any) {
	if b.readOnly() {
		return // the active node removes it
	}
	if err := b.consentSrc.ExpireAttempt(ctx, a.config, a.id); err != nil && ctx.Err() == nil {
		b.logger.Warn("removing an expired consent attempt failed", "config", a.config, "consent", a.id, "error", err)
	}
}

// ExpireAttemptAt plans the removal of the consent's authorization attempt
// at at, its expiry (the scheduler asks the ConsentSource then; an attempt
// replaced meanwhile is left alone by it).
func (b *Broker) ExpireAttemptAt(config, id string, at time.Time) {
	if b.consentSrc == nil {
		return
	}
	a := &attemptExpiry{config: strings.Clone(config), id: strings.Clone(id), plan: plan{index: -1}}
	b.sched.add(a, nil, nanos(at))
}

// attemptSweep is the task that asks the ConsentSource to remove expired
// attempts no planned removal covers (written before this process
// started). It is planned only while the source says such attempts are
// left, so a mount without them has no timer for it.
type attemptSweep struct{ plan plan }

func (a *attemptSweep) slot() *plan   { return &a.plan }
func (a *attemptSweep) label() string { return "consent attempt sweep" }
func (a *attemptSweep) run(ctx context.Context, b *Broker, _ any) {
	if b.readOnly() {
		return // the active node sweeps
	}
	more, err := b.consentSrc.SweepAttempts(ctx)
	if err != nil && ctx.Err() == nil {
		b.logger.Warn("sweeping expired consent attempts failed", "error", err)
	}
	if more || err != nil {
		b.PlanAttemptSweep()
	}
}

// PlanAttemptSweep plans a sweep of expired attempts one AttemptSweep
// period from now (unless one is planned): call it when storage may hold
// attempts no planned removal covers (at start, when any are indexed). The
// sweep plans the next while attempts are left.
func (b *Broker) PlanAttemptSweep() {
	if b.sweepEvery <= 0 || b.consentSrc == nil {
		return
	}
	s := b.sched
	s.mu.Lock()
	if s.sweep == nil {
		s.sweep = &attemptSweep{plan: plan{index: -1}}
	}
	a, planned := s.sweep, s.sweep.plan.index >= 0
	s.mu.Unlock()
	if !planned {
		s.add(a, nil, b.clock.Now().Add(b.sweepEvery).UnixNano())
	}
}
