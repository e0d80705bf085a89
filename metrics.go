package bankauth

import (
	"bytes"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// metricsContentType is the Prometheus text exposition format 0.0.4.
var metricsContentType = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// metrics are one mount's Prometheus metrics, in a registry of its own so
// that several bankauth mounts served by one plugin process never mix.
// Per-config figures live in the broker and are turned into
// metrics at scrape time (entryCollector); counters are per Vault node and
// start at zero when the plugin starts.
type metrics struct {
	registry   *prometheus.Registry
	refreshLag prometheus.Histogram
	panics     prometheus.Counter // handler panics recovered (request_guard.go)
}

func newMetrics(b *backend) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		refreshLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bankauth_background_refresh_lag_seconds",
			Help:    "How late background refreshes stored a new token, past the moment they were due.",
			Buckets: []float64{0, .1, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bankauth_handler_panics_total",
			Help: "Panics recovered in request handlers (answered 500) and background refreshes (this node, since plugin start). Any is a defect.",
		}),
	}
	m.registry.MustRegister(m.refreshLag, m.panics, entryCollector{b}, keyCollector{b},
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

// entryCollector exports the per-config figures kept by the broker (atomic
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

func (c entryCollector) Collect(ch chan<- prometheus.Metric) {
	c.b.broker.Each(false, func(name string, s broker.Snapshot) { collectConn(ch, name, &s) })
}

func collectConn(ch chan<- prometheus.Metric, name string, s *broker.Snapshot) {
	if !s.Used() {
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	type hist struct {
		count   uint64
		sum     float64
		buckets map[float64]uint64
	}
	byOutcome := map[string]*hist{}
	var outcomes []string
	for _, cell := range s.Requests {
		counter(descRequests, cell.Count, name, s.Provider, cell.Step, cell.Outcome)
		h := byOutcome[cell.Outcome]
		if h == nil {
			h = &hist{buckets: make(map[float64]uint64, len(broker.LatencyBuckets))}
			byOutcome[cell.Outcome] = h
			outcomes = append(outcomes, cell.Outcome)
		}
		h.count += cell.Count
		h.sum += cell.Sum
		var cumulative uint64
		for i, le := range broker.LatencyBuckets {
			cumulative += uint64(cell.Buckets[i])
			h.buckets[le] += cumulative
		}
	}
	for _, o := range outcomes {
		h := byOutcome[o]
		ch <- prometheus.MustNewConstHistogram(descLatency, h.count, h.sum, h.buckets, name, o)
	}
	if ok, failed := s.FetchSuccesses, s.FetchFailures; ok+failed > 0 {
		counter(descFetches, ok, name, s.Provider, "success")
		counter(descFetches, failed, name, s.Provider, "failure")
	}
	counter(descCacheHits, s.CacheHits, name)
	counter(descCacheMisses, s.CacheMisses, name)
	counter(descStale, s.StaleServed, name)
	ch <- prometheus.MustNewConstMetric(descStreak, prometheus.GaugeValue, float64(s.ConsecutiveFailures), name)
	if !s.TokenExpiresAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(descExpiry, prometheus.GaugeValue,
			float64(s.TokenExpiresAt.UnixNano())/float64(time.Second), name)
	}
}

// observeRefreshLag records how late a background refresh of a token ran:
// the time from the token's planned refresh point to when the new token was
// stored, backoffs after failures included. It feeds the
// bankauth_background_refresh_lag_seconds histogram.
func (b *backend) observeRefreshLag(lag time.Duration) {
	b.metrics.refreshLag.Observe(max(lag, 0).Seconds())
}
