package broker

import (
	"context"
	"errors"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// Result is a token as a reader gets it. Its Token never holds the refresh
// token: that stays in storage.
type Result struct {
	Token bank.Token
	// Lease is whether reads of the config carry a Vault lease.
	Lease bool
	// Warning, when set, says why a stale (but still valid) token was
	// served: no fresh one could be had.
	Warning string
}

// Cached returns name's token when it is fresh in memory, without a lock
// or a storage round trip; ok is false otherwise (call Get). It counts a
// cache hit, records the read for background refresh, and plans the
// refresh of a token whose plan was dropped while it went unread.
func (b *Broker) Cached(name string) (res Result, ok bool) {
	c := b.lookup(name)
	if c == nil {
		return Result{}, false
	}
	now := b.clock.Now()
	c.touch(now)
	s := c.current()
	if s == nil || !s.tok.freshAt(now) || s.noCache {
		return Result{}, false
	}
	c.stats.cacheHits.Add(1)
	if c.planned.Load() != s {
		b.plan(c, s, now)
	}
	return Result{Token: s.tok.token(), Lease: s.lease}, true
}

// Get returns a valid token for name: the one in memory or storage while it
// is fresh, else a new one from the bank (stored before it is handed out),
// else, while the bank fails, the stale one with a warning as long as it
// has life left. Concurrent callers of a stale token cause one bank
// request. Errors: NoConfigError, ErrReadOnly, *BackoffError, package bank's
// *UpstreamError and *BudgetError, storage and context errors.
func (b *Broker) Get(ctx context.Context, st Store, name string) (Result, error) {
	c, cfg, err := b.connFor(ctx, st, name)
	if err != nil {
		return Result{}, err
	}
	c.touch(b.clock.Now())
	c.stats.cacheMisses.Add(1)
	return b.obtain(ctx, st, c, cfg, false, 0)
}

// Refresh fetches a new token for name whatever the cached one's age (after
// the bank refused the current one, say). Callers that force at the same
// moment share one bank request: a token from a fetch that started after
// the call began is accepted.
func (b *Broker) Refresh(ctx context.Context, st Store, name string) (Result, error) {
	c, cfg, err := b.connFor(ctx, st, name)
	if err != nil {
		return Result{}, err
	}
	c.touch(b.clock.Now())
	return b.obtain(ctx, st, c, cfg, true, c.fetches.Load())
}

// obtain runs obtainOnce again (at most twice) when the config changed under
// a fetch, so the reader gets a token of the config as it now is. cfg, when
// not nil, is the config connFor just read from storage. A forced call
// accepts only a token from a fetch numbered above after.
func (b *Broker) obtain(ctx context.Context, st Store, c *conn, cfg *bank.Config, force bool, after uint32) (Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := b.obtainOnce(ctx, st, c, cfg, force, after)
		if !errors.Is(err, errConfigChanged) || attempt == 2 {
			return res, err
		}
		cfg = nil
	}
}

func (b *Broker) obtainOnce(ctx context.Context, st Store, c *conn, cfg *bank.Config, force bool, after uint32) (Result, error) {
	if s := c.current(); s != nil && s.noCache {
		return b.fetchUncached(ctx, st, c)
	}
	if served, ok, err := b.acquireOrServe(ctx, c, force); ok || err != nil {
		return served, err
	}
	s, cfg, err := b.load(ctx, st, c, cfg)
	if err != nil {
		b.release(c)
		return Result{}, err
	}
	if s.noCache {
		b.release(c)
		return b.fetchUncached(ctx, st, c)
	}
	defer b.release(c)

	tok, now := &s.tok, b.clock.Now()
	if tok.freshAt(now) && (!force || s.fetchNo > after) {
		if c.planned.Load() != s {
			b.plan(c, s, now)
		}
		return Result{Token: tok.token(), Lease: s.lease}, nil
	}
	// A node that cannot store the new token lets Vault forward the request
	// to the active node before the bank is called, not after.
	if b.readOnly() {
		return Result{}, ErrReadOnly
	}
	if cause, retryAt, backing := c.backingOff(now); backing {
		err = &BackoffError{Cause: cause, RetryAt: retryAt}
	} else {
		var ns *state
		if ns, err = b.renew(ctx, st, c, s, cfg); err == nil {
			return Result{Token: ns.tok.token(), Lease: ns.lease}, nil
		}
		if errors.Is(err, errConfigChanged) {
			return Result{}, err
		}
	}
	now = b.clock.Now()
	if !force && tok.usableAt(now) {
		// Logged once per failed fetch, not on every read during the backoff.
		var bo *BackoffError
		if !errors.As(err, &bo) {
			b.logger.Warn("serving the cached token while the bank fails", "config", c.name,
				"expires_at", tok.expiresAt(), "error", err)
		}
		c.stats.staleServed.Add(1)
		return Result{Token: tok.token(), Lease: s.lease, Warning: staleWarning(tok, err, now)}, nil
	}
	return Result{}, err
}

// acquireOrServe takes c's lock (ok false, err nil). A reader whose token in
// memory is stale but still valid waits at most StaleWaitLimit for a bank
// request in progress, then is served that token with a warning (ok true).
func (b *Broker) acquireOrServe(ctx context.Context, c *conn, force bool) (Result, bool, error) {
	s := c.current()
	if force || s == nil || !s.tok.usableAt(b.clock.Now().Add(StaleWaitLimit)) {
		return Result{}, false, b.acquire(ctx, c)
	}
	got, err := b.acquireWithin(ctx, c, b.clock, StaleWaitLimit)
	if got || err != nil {
		return Result{}, false, err
	}
	c.stats.staleServed.Add(1)
	return Result{Token: s.tok.token(), Lease: s.lease, Warning: staleWarning(&s.tok, busyError{}, b.clock.Now())}, true, nil
}

// renew fetches a new token from the bank (by refresh grant where the
// provider has one), stores it, and only then makes it the current token
// and plans its background refresh: a token (and the rotated single-use
// refresh token that came with it) is in storage before anyone sees it. A
// token fetched under a config that changed meanwhile is neither stored
// nor served (errConfigChanged). cfg, when not nil, is the config just read
// under the same lock. The caller holds c's lock.
func (b *Broker) renew(ctx context.Context, st Store, c *conn, s *state, cfg *bank.Config) (*state, error) {
	client, cfg, err := b.client(ctx, st, c, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	prev, err := b.previous(ctx, st, c, s, cfg)
	if err != nil {
		return nil, err
	}
	no := c.fetches.Add(1)
	next, err := client.Fetch(ctx, prev)
	b.saveBudget(ctx, st, c, client)
	c.keepNonce(client)
	if err != nil {
		// A caller that gave up says nothing about the bank.
		if ctx.Err() == nil {
			c.failed(err, b.clock.Now())
		}
		return nil, err
	}
	if c.current() != s {
		return nil, errConfigChanged
	}
	if err := st.PutToken(ctx, c.name, next); err != nil {
		// Not handed out unstored; back off as after a bank failure.
		c.failed(err, b.clock.Now())
		return nil, err
	}
	ns := c.replace(s, next, no, viewOf(cfg))
	if ns == nil {
		return nil, errConfigChanged
	}
	c.succeeded()
	b.plan(c, ns, b.clock.Now())
	return ns, nil
}

// previous is s's token as the bank client needs it for a refresh grant:
// with its refresh token, which only storage keeps, read back when the
// token came with one and storage still holds that token under cfg.
func (b *Broker) previous(ctx context.Context, st Store, c *conn, s *state, cfg *bank.Config) (*bank.Token, error) {
	if s.tok.none() {
		return nil, nil
	}
	prev := s.tok.token()
	if !s.tok.refreshable {
		return &prev, nil
	}
	stored, err := st.Token(ctx, c.name)
	if err != nil {
		return nil, err
	}
	if stored != nil && stored.AccessToken == prev.AccessToken && stored.ConfigKey == cfg.CacheKey() {
		prev.RefreshToken, prev.RefreshExpiresAt = stored.RefreshToken, stored.RefreshExpiresAt
	}
	return &prev, nil
}

// fetchUncached serves configs with cache=false: every call fetches a new
// token, in parallel (each reader needs its own single-use token), and no
// token is kept. Like every config they back off after a failure and keep
// to (and save) their request budget.
func (b *Broker) fetchUncached(ctx context.Context, st Store, c *conn) (Result, error) {
	now := b.clock.Now()
	if cause, retryAt, backing := c.backingOff(now); backing {
		return Result{}, &BackoffError{Cause: cause, RetryAt: retryAt}
	}
	if err := b.acquire(ctx, c); err != nil { // only while the client loads the request budget
		return Result{}, err
	}
	client, cfg, err := b.client(ctx, st, c, nil)
	b.release(c)
	if err != nil {
		return Result{}, err
	}
	defer client.Close()
	tok, err := client.Fetch(ctx, nil)
	b.saveBudget(ctx, st, c, client)
	c.keepNonce(client)
	if err != nil {
		if ctx.Err() == nil {
			c.failed(err, b.clock.Now())
		}
		return Result{}, err
	}
	c.succeeded()
	out := *tok
	out.RefreshToken, out.RefreshExpiresAt, out.ConfigKey = "", time.Time{}, ""
	return Result{Token: out, Lease: !cfg.NoLease}, nil
}
