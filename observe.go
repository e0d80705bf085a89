package bankauth

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
)

// connStats are one config's counters on this node since the plugin
// started. They live in memory only: what storage already knows (when the
// cached token was obtained, when it expires) is read from storage instead.
// Every field is atomic: the hot path (a cached token read) adds one to
// cacheHits and does nothing else.
type connStats struct {
	cacheHits           atomic.Uint64 // reads answered from memory without a lock
	cacheMisses         atomic.Uint64 // reads that took the slow path (token missing or stale in memory)
	bankRequests        atomic.Uint64 // HTTP round trips to the bank
	fetchFailures       atomic.Uint64 // token fetches that failed
	consecutiveFailures atomic.Int64  // fetches failed since the last success
	staleServed         atomic.Uint64 // reads answered with a stale token while the bank failed
	lastError           atomic.Pointer[fetchError]
}

// used reports whether the config has been read or fetched on this node.
func (s *connStats) used() bool {
	return s.cacheHits.Load()+s.cacheMisses.Load()+s.bankRequests.Load() > 0
}

// fetchError is the last failed fetch, as operators see it in status/<name>.
// Its text is the same sanitized text readers got: no secret, no token.
type fetchError struct {
	At       time.Time
	Provider string
	Step     string
	Status   int
	BankCode string
	BankMsg  string
	Text     string
}

func newFetchError(provider string, err error, at time.Time) *fetchError {
	fe := &fetchError{At: at, Provider: provider, Text: err.Error()}
	var up *engine.UpstreamError
	if errors.As(err, &up) {
		fe.Provider, fe.Step, fe.Status, fe.BankCode, fe.BankMsg = up.Provider, up.Step, up.Status, up.Code, up.Message
	}
	return fe
}

// connObserver is the engine.Observer of one config's client: it feeds the
// config's counters and the mount's Prometheus metrics.
type connObserver struct {
	name     string
	provider string
	stats    *connStats
	metrics  *metrics
}

var _ engine.Observer = (*connObserver)(nil)

// BankRequest counts and times one round trip.
func (o *connObserver) BankRequest(ev engine.RequestEvent) {
	o.stats.bankRequests.Add(1)
	o.metrics.bankRequest(o.name, ev)
}

// FetchDone keeps the failure streak and the last error.
func (o *connObserver) FetchDone(err error) {
	if err == nil {
		o.stats.consecutiveFailures.Store(0)
		o.metrics.fetchDone(o.name, o.provider, true)
		return
	}
	o.stats.fetchFailures.Add(1)
	o.stats.consecutiveFailures.Add(1)
	o.stats.lastError.Store(newFetchError(o.provider, err, time.Now()))
	o.metrics.fetchDone(o.name, o.provider, false)
}

// observerFor builds the observer for a config's client.
func (b *backend) observerFor(name, provider string, e *entry) *connObserver {
	return &connObserver{name: name, provider: provider, stats: &e.stats, metrics: b.metrics}
}

// ObserveStaleServed records that a reader of name got a token past its
// refresh point (but not expired) because the bank could not give a new one.
// Serve-while-valid (token reads) calls it; it counts in status/<name>
// stale_served and the bankauth_tokens_served_stale_total metric.
func (b *backend) ObserveStaleServed(name string) {
	b.entryFor(name).stats.staleServed.Add(1)
}

// ObserveRefreshLag records how late a background refresh of a token ran:
// the time between when the refresher meant to renew it (e.g. its refresh
// point) and when the new token was stored; zero or negative when on time.
// The background refresher calls it once per refresh; it feeds the
// bankauth_background_refresh_lag_seconds histogram.
func (b *backend) ObserveRefreshLag(lag time.Duration) {
	b.metrics.refreshLag.Observe(max(lag, 0).Seconds())
}
