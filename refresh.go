package bankauth

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// Background refresh. Each token that readers use gets a timer, set when the
// token enters memory, that renews it shortly before it turns stale, so a
// reader almost never waits on the bank. Vault's PeriodicFunc runs about
// once a minute, too coarse for tokens that live a minute, hence timers of
// our own. The renewal takes the same per-name lock as readers, so a token
// lifetime costs one bank request whoever asks first. A token nobody has
// read for background_refresh_idle is left to go stale; the next read
// fetches it and plans again.

// minRefreshLead is the least time before a token's stale point at which the
// background refresh runs.
const minRefreshLead = 500 * time.Millisecond

// refreshPoint is when a token is renewed in the background: a tenth of its
// life before it stops being handed out (at 70% of its life), so the new
// token is in place before any reader sees the old one stale.
func refreshPoint(tok *engine.Token) time.Time {
	lead := max(tok.Lifetime()/10, minRefreshLead)
	return tok.StaleAt().Add(-lead)
}

// refresher tracks the background refresh goroutines so Clean can stop them.
type refresher struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

func newRefresher() *refresher {
	ctx, cancel := context.WithCancel(context.Background())
	return &refresher{ctx: ctx, cancel: cancel}
}

// enter registers a running refresh; false once the backend is cleaned up.
func (r *refresher) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	return true
}

func (r *refresher) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// stop refuses new refreshes and cancels running ones; wait waits for them.
func (r *refresher) stop() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
}

func (r *refresher) wait() { r.wg.Wait() }

// touch records a read; at most one store a second per name on the hot path.
func (e *entry) touch(now time.Time) {
	if n := now.UnixNano(); n-e.lastRead.Load() > int64(time.Second) {
		e.lastRead.Store(n)
	}
}

// stopTimer cancels the planned background refresh.
func (e *entry) stopTimer() {
	e.timerMu.Lock()
	defer e.timerMu.Unlock()
	if e.timer != nil {
		e.timer.Stop()
	}
	e.timer, e.timerTok = nil, nil
	e.scheduled.Store(false)
}

// scheduleRefresh plans the background renewal of tok, the entry's current
// token, replacing any earlier plan.
func (b *backend) scheduleRefresh(name string, e *entry, tok *engine.Token, cfg *engine.Config) {
	b.scheduleRefreshAt(name, e, tok, cfg, refreshPoint(tok))
}

func (b *backend) scheduleRefreshAt(name string, e *entry, tok *engine.Token, cfg *engine.Config, at time.Time) {
	e.timerMu.Lock()
	defer e.timerMu.Unlock()
	if e.timer != nil {
		e.timer.Stop()
		e.timer, e.timerTok = nil, nil
	}
	if e.token.Load() != tok {
		return // replaced meanwhile; whoever replaced it plans for the new one
	}
	// Off (or no storage to write to, or shutting down): decided, nothing to plan.
	e.scheduled.Store(true)
	if cfg.EffectiveBackgroundRefreshIdle() <= 0 || b.storage == nil || b.refresher.isClosed() {
		return
	}
	e.timerTok = tok
	e.timer = time.AfterFunc(time.Until(at), func() { b.refreshInBackground(name, e, tok) })
}

// storageReadOnly reports whether this node must not write storage (a
// performance standby or a DR secondary): it then never refreshes in the
// background; the active node does.
func (b *backend) storageReadOnly() bool {
	return b.System().ReplicationState().HasState(consts.ReplicationPerformanceStandby | consts.ReplicationDRSecondary)
}

// refreshInBackground renews tok if it is still the entry's token and was
// read recently enough.
func (b *backend) refreshInBackground(name string, e *entry, tok *engine.Token) {
	if !b.refresher.enter() {
		return
	}
	defer b.refresher.wg.Done()
	e.timerMu.Lock()
	// The plan stays marked while the refresh runs: readers that came along
	// and planned again would arm timers for a point already past, each
	// starting another refresh that queues on the lock, one per read.
	if e.timerTok == tok {
		e.timer, e.timerTok = nil, nil
	}
	e.timerMu.Unlock()

	ctx := b.refresher.ctx
	if err := e.acquire(ctx); err != nil {
		return
	}
	defer e.release()
	if e.token.Load() != tok {
		return // renewed by a reader, or dropped by a config change
	}
	logger := b.Logger().Named(name)
	lc, err := b.config(ctx, b.storage, name, e)
	if err != nil {
		logger.Warn("background refresh: cannot load config", "error", err)
		return
	}
	idle := lc.cfg.EffectiveBackgroundRefreshIdle()
	if last := time.Unix(0, e.lastRead.Load()); time.Since(last) > idle {
		logger.Debug("background refresh: token not read recently, letting it go stale", "last_read", last.UTC(), "idle", idle)
		e.scheduled.Store(false) // a read of the still fresh token plans again
		return
	}
	if b.storageReadOnly() {
		logger.Debug("background refresh: storage is read-only on this node, skipping")
		e.scheduled.Store(true) // decided for this token: readers need not plan again
		return
	}
	now := time.Now()
	if _, retryAt, backing := e.health.backingOff(now); backing {
		if usableAt(tok, retryAt) {
			b.scheduleRefreshAt(name, e, tok, lc.cfg, retryAt)
		}
		return
	}
	next, err := b.renew(ctx, b.storage, name, e, lc, tok)
	if err != nil {
		logger.Warn("background refresh failed", "provider", lc.cfg.Provider, "error", err)
		// Try again after the backoff while the token is still worth
		// renewing; never on a read-only node (storage errors cross gRPC as
		// text, so match it).
		readOnly := strings.Contains(err.Error(), logical.ErrReadOnly.Error())
		if retryAt := e.health.retryTime(); !readOnly && retryAt.After(now) && usableAt(tok, retryAt) {
			b.scheduleRefreshAt(name, e, tok, lc.cfg, retryAt)
		}
		return
	}
	b.ObserveRefreshLag(time.Since(refreshPoint(tok)))
	logger.Debug("token refreshed in background", "provider", lc.cfg.Provider, "expires_at", next.ExpiresAt.UTC())
}
