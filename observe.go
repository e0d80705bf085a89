package bankauth

import (
	"errors"
	"sync"
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
	// Keeps cacheHits, which every cached read writes, off the cache line of
	// entry.token, which every cached read loads.
	_                   [64]byte
	cacheHits           atomic.Uint64 // reads answered from memory without a lock
	cacheMisses         atomic.Uint64 // reads that took the slow path (token missing or stale in memory)
	bankRequests        atomic.Uint64 // HTTP round trips to the bank
	fetchFailures       atomic.Uint64 // token fetches that failed
	fetchSuccesses      atomic.Uint64 // token fetches that succeeded
	consecutiveFailures atomic.Int64  // fetches failed since the last success
	staleServed         atomic.Uint64 // reads answered with a stale token while the bank failed
	lastError           atomic.Pointer[fetchError]
	requests            requestStats // per step and outcome, for the metrics
}

// latencyBuckets are the upper bounds (seconds) of the bank request
// latency histogram.
var latencyBuckets = [...]float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// requestCell counts the bank requests of one step with one outcome.
type requestCell struct {
	step, outcome string
	count         uint64
	sum           float64                     // seconds
	buckets       [len(latencyBuckets)]uint64 // requests per bucket, not cumulative
}

// requestStats holds a config's request counts and latencies. A config
// sees one to a few (step, outcome) pairs, so a short slice under a mutex
// costs far less memory than Prometheus vectors with one child per label
// set (10,000 configs that each made one bank request: 4.2 MiB of heap,
// entries included, against 27.7 MiB with vectors; see
// BenchmarkMetricsAt10kConfigs), and bank requests are never on the hot
// path.
type requestStats struct {
	mu       sync.Mutex
	provider string
	cells    []requestCell
}

func (r *requestStats) observe(ev engine.RequestEvent) {
	secs := ev.Latency.Seconds()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.provider = ev.Provider
	i := 0
	for i < len(r.cells) && (r.cells[i].step != ev.Step || r.cells[i].outcome != ev.Outcome) {
		i++
	}
	if i == len(r.cells) {
		r.cells = append(r.cells, requestCell{step: ev.Step, outcome: ev.Outcome})
	}
	c := &r.cells[i]
	c.count++
	c.sum += secs
	for b, le := range latencyBuckets {
		if secs <= le {
			c.buckets[b]++
			break
		}
	}
}

// snapshot copies the cells, for a scrape.
func (r *requestStats) snapshot() (string, []requestCell) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.provider, append([]requestCell(nil), r.cells...)
}

// used reports whether the config has been read or fetched on this node.
func (s *connStats) used() bool {
	return s.cacheHits.Load()+s.cacheMisses.Load()+s.bankRequests.Load()+s.staleServed.Load() > 0
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
// config's counters, which status/<name> and the metrics read.
type connObserver struct {
	provider string
	stats    *connStats
}

var _ engine.Observer = (*connObserver)(nil)

// BankRequest counts and times one round trip.
func (o *connObserver) BankRequest(ev engine.RequestEvent) {
	o.stats.bankRequests.Add(1)
	o.stats.requests.observe(ev)
}

// FetchDone keeps the failure streak and the last error.
func (o *connObserver) FetchDone(err error) {
	if err == nil {
		o.stats.fetchSuccesses.Add(1)
		o.stats.consecutiveFailures.Store(0)
		return
	}
	o.stats.fetchFailures.Add(1)
	o.stats.consecutiveFailures.Add(1)
	o.stats.lastError.Store(newFetchError(o.provider, err, time.Now()))
}

// observerFor builds the observer for a config's client.
func (b *backend) observerFor(provider string, e *entry) *connObserver {
	return &connObserver{provider: provider, stats: &e.stats}
}

// ObserveRefreshLag records how late a background refresh of a token ran:
// the time from the token's planned refresh point (refreshPoint) to when
// the new token was stored, backoffs after failures included. The
// background refresher calls it once per successful refresh; it feeds the
// bankauth_background_refresh_lag_seconds histogram.
func (b *backend) ObserveRefreshLag(lag time.Duration) {
	b.metrics.refreshLag.Observe(max(lag, 0).Seconds())
}
