package bankauth

import (
	"bytes"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// metricsContentType is the Prometheus text exposition format 0.0.4.
var metricsContentType = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// metrics are one mount's Prometheus metrics, in a registry of its own so
// that several bankauth mounts served by one plugin process never mix.
// Per-config figures live in each entry's connStats and are turned into
// metrics at scrape time (entryCollector); counters are per Vault node and
// start at zero when the plugin starts.
type metrics struct {
	registry   *prometheus.Registry
	refreshLag prometheus.Histogram
}

func newMetrics(b *backend) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		refreshLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bankauth_background_refresh_lag_seconds",
			Help:    "How late background refreshes stored a new token, past the moment they were due.",
			Buckets: []float64{0, .1, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	m.registry.MustRegister(m.refreshLag, entryCollector{b}, keyCollector{b},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// exposition renders every metric in the Prometheus text format.
func (m *metrics) exposition() ([]byte, error) {
	families, err := m.registry.Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// entryCollector exports the per-config figures kept in connStats (atomic
// counters and small request tables, so the token read path never touches
// a Prometheus vector) and the expiry of each token held in memory.
// Configs not read or fetched on this node since the plugin started are
// left out.
type entryCollector struct{ b *backend }

var (
	descRequests = prometheus.NewDesc("bankauth_bank_requests_total",
		"HTTP requests sent to the bank, by config, provider, step and outcome (2xx, 3xx, 4xx, 5xx, no_answer).",
		[]string{"config", "provider", "step", "outcome"}, nil)
	descLatency = prometheus.NewDesc("bankauth_bank_request_duration_seconds",
		"Latency of HTTP requests to the bank, body read included, by config and outcome.",
		[]string{"config", "outcome"}, nil)
	descFetches = prometheus.NewDesc("bankauth_token_fetches_total",
		"Token fetches (all steps of one token request, refresh included), by config, provider and result (success, failure).",
		[]string{"config", "provider", "result"}, nil)
	descCacheHits = prometheus.NewDesc("bankauth_token_cache_hits_total",
		"Token reads answered from memory without waiting (this node, since plugin start).", []string{"config"}, nil)
	descCacheMisses = prometheus.NewDesc("bankauth_token_cache_misses_total",
		"Token reads that found no fresh token in memory and took the slow path (storage, or a bank request).", []string{"config"}, nil)
	descStale = prometheus.NewDesc("bankauth_tokens_served_stale_total",
		"Token reads answered with a token past its refresh point because the bank failed.", []string{"config"}, nil)
	descStreak = prometheus.NewDesc("bankauth_token_fetch_consecutive_failures",
		"Token fetches failed in a row since the last success (0 when healthy).", []string{"config"}, nil)
	descExpiry = prometheus.NewDesc("bankauth_token_expiry_timestamp_seconds",
		"Unix time at which the token held in memory expires.", []string{"config"}, nil)
)

func (entryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descLatency, descFetches, descCacheHits, descCacheMisses, descStale, descStreak, descExpiry} {
		ch <- d
	}
}

type namedEntry struct {
	name string
	e    *entry
}

func (c entryCollector) Collect(ch chan<- prometheus.Metric) {
	// Copy the list first: a scrape must not hold the map's lock while
	// Prometheus consumes the metrics.
	c.b.mu.RLock()
	list := make([]namedEntry, 0, len(c.b.entries))
	for name, e := range c.b.entries {
		list = append(list, namedEntry{name, e})
	}
	c.b.mu.RUnlock()
	for _, ne := range list {
		collectEntry(ch, ne.name, ne.e)
	}
}

func collectEntry(ch chan<- prometheus.Metric, name string, e *entry) {
	s := &e.stats
	if !s.used() {
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	provider, cells := s.requests.snapshot()
	type hist struct {
		count   uint64
		sum     float64
		buckets map[float64]uint64
	}
	byOutcome := map[string]*hist{}
	var outcomes []string
	for _, cell := range cells {
		counter(descRequests, cell.count, name, provider, cell.step, cell.outcome)
		h := byOutcome[cell.outcome]
		if h == nil {
			h = &hist{buckets: make(map[float64]uint64, len(latencyBuckets))}
			byOutcome[cell.outcome] = h
			outcomes = append(outcomes, cell.outcome)
		}
		h.count += cell.count
		h.sum += cell.sum
		var cumulative uint64
		for i, le := range latencyBuckets {
			cumulative += cell.buckets[i]
			h.buckets[le] += cumulative
		}
	}
	for _, o := range outcomes {
		h := byOutcome[o]
		ch <- prometheus.MustNewConstHistogram(descLatency, h.count, h.sum, h.buckets, name, o)
	}
	if ok, failed := s.fetchSuccesses.Load(), s.fetchFailures.Load(); ok+failed > 0 {
		counter(descFetches, ok, name, provider, "success")
		counter(descFetches, failed, name, provider, "failure")
	}
	counter(descCacheHits, s.cacheHits.Load(), name)
	counter(descCacheMisses, s.cacheMisses.Load(), name)
	counter(descStale, s.staleServed.Load(), name)
	ch <- prometheus.MustNewConstMetric(descStreak, prometheus.GaugeValue, float64(s.consecutiveFailures.Load()), name)
	if tok := e.token.Load(); tok != nil {
		ch <- prometheus.MustNewConstMetric(descExpiry, prometheus.GaugeValue,
			float64(tok.ExpiresAt.UnixNano())/float64(time.Second), name)
	}
}
