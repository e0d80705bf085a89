package broker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// stats are one connection's counters on this node since the plugin
// started. They live in memory only: what storage already knows (when the
// cached token was obtained, when it expires) is read from storage instead.
// Every field is atomic: the hot path (a cached token read) adds one to
// cacheHits and does nothing else.
type stats struct {
	cacheHits           atomic.Uint64
	cacheMisses         atomic.Uint64
	fetchFailures       atomic.Uint64
	fetchSuccesses      atomic.Uint64
	consecutiveFailures atomic.Int64
	staleServed         atomic.Uint64
	lastError           atomic.Pointer[FetchError]
	requests            requestStats
}

// LatencyBuckets are the upper bounds (seconds) of the bank request latency
// histogram.
var LatencyBuckets = [...]float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// RequestCell counts the bank requests of one step with one outcome.
type RequestCell struct {
	Step, Outcome string
	Count         uint64
	Sum           float64                     // seconds
	Buckets       [len(LatencyBuckets)]uint32 // requests per bucket, not cumulative
}

// requestStats holds a connection's request counts and latencies. A config
// sees one to a few (step, outcome) pairs, so a short slice under a mutex
// costs far less memory than Prometheus vectors with one child per label
// set, and bank requests are never on the hot path.
type requestStats struct {
	mu       sync.Mutex
	provider string
	cells    []cell
}

// cell is a RequestCell as memory keeps it: 80 bytes.
type cell struct {
	step    string
	outcome uint8 // index in outcomes
	count   uint64
	sum     float64
	buckets [len(LatencyBuckets)]uint32
}

// outcomes are package bank's request outcomes, which cells keep as an index.
var outcomes = [...]string{bank.Outcome2xx, bank.Outcome3xx, bank.Outcome4xx, bank.Outcome5xx,
	bank.OutcomeNoAnswer, bank.OutcomeUnhandled}

// outcomeIndex is o's index in outcomes; an outcome package bank does not
// name counts as unhandled.
func outcomeIndex(o string) uint8 {
	for i, known := range outcomes {
		if o == known {
			return uint8(i)
		}
	}
	return uint8(len(outcomes) - 1)
}

func (r *requestStats) observe(ev bank.RequestEvent) {
	secs := ev.Latency.Seconds()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.provider != ev.Provider {
		r.provider = intern(ev.Provider)
	}
	outcome := outcomeIndex(ev.Outcome)
	i := 0
	for i < len(r.cells) && (r.cells[i].step != ev.Step || r.cells[i].outcome != outcome) {
		i++
	}
	if i == len(r.cells) {
		// Step names come from each fetch's own copy of the profile.
		r.cells = append(r.cells, cell{step: intern(ev.Step), outcome: outcome})
	}
	c := &r.cells[i]
	c.count++
	c.sum += secs
	for b, le := range LatencyBuckets {
		if secs <= le {
			c.buckets[b]++
			break
		}
	}
}

// total is the number of bank requests observed.
func (r *requestStats) total() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	for i := range r.cells {
		n += r.cells[i].count
	}
	return n
}

func (r *requestStats) snapshot() (string, []RequestCell) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RequestCell, len(r.cells))
	for i, c := range r.cells {
		out[i] = RequestCell{Step: c.step, Outcome: outcomes[c.outcome], Count: c.count, Sum: c.sum, Buckets: c.buckets}
	}
	return r.provider, out
}

// FetchError is the last failed fetch, as operators see it in status. Its
// text is the same sanitized text readers got: no secret, no token.
type FetchError struct {
	At       time.Time
	Provider string
	Step     string
	Status   int
	BankCode string
	BankMsg  string
	Text     string
}

func newFetchError(provider string, err error, at time.Time) *FetchError {
	fe := &FetchError{At: at, Provider: provider, Text: err.Error()}
	var up *bank.UpstreamError
	if errors.As(err, &up) {
		fe.Provider, fe.Step, fe.Status, fe.BankCode, fe.BankMsg = up.Provider, up.Step, up.Status, up.Code, up.Message
	}
	return fe
}

// observer is the bank.Observer of one connection's client.
type observer struct {
	provider string
	stats    *stats
	now      func() time.Time
}

var _ bank.Observer = (*observer)(nil)

// BankRequest counts and times one round trip.
func (o *observer) BankRequest(ev bank.RequestEvent) {
	o.stats.requests.observe(ev)
}

// FetchDone keeps the failure streak and the last error.
func (o *observer) FetchDone(err error) {
	if err == nil {
		o.stats.fetchSuccesses.Add(1)
		o.stats.consecutiveFailures.Store(0)
		return
	}
	o.stats.fetchFailures.Add(1)
	o.stats.consecutiveFailures.Add(1)
	o.stats.lastError.Store(newFetchError(o.provider, err, o.now()))
}

// Snapshot is what this node knows of one connection, for status and
// metrics: counters since the plugin started, the token in memory, the
// backoff. It holds no secret.
type Snapshot struct {
	CacheHits, CacheMisses, BankRequests, StaleServed uint64
	FetchSuccesses, FetchFailures                     uint64
	ConsecutiveFailures                               int64
	LastError                                         *FetchError // nil: none since the plugin started
	Provider                                          string      // of the last bank request
	Requests                                          []RequestCell
	TokenExpiresAt                                    time.Time // zero: no token in memory
	BackoffUntil                                      time.Time // zero or past: not backing off
	LastFailure                                       error     // the failure behind the backoff; nil after a success
}

// Used reports whether the connection was read or fetched on this node.
func (s *Snapshot) Used() bool {
	return s.CacheHits+s.CacheMisses+s.BankRequests+s.StaleServed > 0
}

func (c *conn) snapshot(withRequests bool) Snapshot {
	s := &c.stats
	snap := Snapshot{
		CacheHits: s.cacheHits.Load(), CacheMisses: s.cacheMisses.Load(), BankRequests: s.requests.total(),
		StaleServed: s.staleServed.Load(), FetchSuccesses: s.fetchSuccesses.Load(), FetchFailures: s.fetchFailures.Load(),
		ConsecutiveFailures: s.consecutiveFailures.Load(), LastError: s.lastError.Load(),
	}
	snap.LastFailure, snap.BackoffUntil = c.lastFailure()
	if withRequests {
		snap.Provider, snap.Requests = s.requests.snapshot()
	}
	if st := c.state.Load(); st != nil && !st.tok.none() {
		snap.TokenExpiresAt = st.tok.expiresAt()
	}
	return snap
}
