package bankauth

import (
	"bytes"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// metricsContentType is the Prometheus text exposition format 0.0.4.
var metricsContentType = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// metrics are one mount's Prometheus metrics, in a registry of its own so
// that several bankauth mounts served by one plugin process never mix.
// Counters are per Vault node and start at zero when the plugin starts.
type metrics struct {
	registry   *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	fetches    *prometheus.CounterVec
	refreshLag prometheus.Histogram
}

func newMetrics(b *backend) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bankauth_bank_requests_total",
			Help: "HTTP requests sent to the bank, by config, provider, step and outcome (2xx, 3xx, 4xx, 5xx, no_answer).",
		}, []string{"config", "provider", "step", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bankauth_bank_request_duration_seconds",
			Help:    "Latency of HTTP requests to the bank, body read included, by config and outcome.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"config", "outcome"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bankauth_token_fetches_total",
			Help: "Token fetches (all steps of one token request, refresh included), by config, provider and result (success, failure).",
		}, []string{"config", "provider", "result"}),
		refreshLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bankauth_background_refresh_lag_seconds",
			Help:    "How late background refreshes stored a new token, past the moment they were due.",
			Buckets: []float64{0, .1, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.fetches, m.refreshLag, entryCollector{b},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) bankRequest(config string, ev engine.RequestEvent) {
	m.requests.WithLabelValues(config, ev.Provider, ev.Step, ev.Outcome).Inc()
	m.latency.WithLabelValues(config, ev.Outcome).Observe(ev.Latency.Seconds())
}

func (m *metrics) fetchDone(config, provider string, ok bool) {
	result := "failure"
	if ok {
		result = "success"
	}
	m.fetches.WithLabelValues(config, provider, result).Inc()
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

// entryCollector exports the per-config counters kept in connStats (atomic
// counters, so the token read path never touches a Prometheus vector) and
// the expiry of each token held in memory. Configs not read or fetched on
// this node since the plugin started are left out.
type entryCollector struct{ b *backend }

var (
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
	for _, d := range []*prometheus.Desc{descCacheHits, descCacheMisses, descStale, descStreak, descExpiry} {
		ch <- d
	}
}

func (c entryCollector) Collect(ch chan<- prometheus.Metric) {
	c.b.mu.RLock()
	defer c.b.mu.RUnlock()
	for name, e := range c.b.entries {
		s := &e.stats
		if !s.used() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(s.cacheHits.Load()), name)
		ch <- prometheus.MustNewConstMetric(descCacheMisses, prometheus.CounterValue, float64(s.cacheMisses.Load()), name)
		ch <- prometheus.MustNewConstMetric(descStale, prometheus.CounterValue, float64(s.staleServed.Load()), name)
		ch <- prometheus.MustNewConstMetric(descStreak, prometheus.GaugeValue, float64(s.consecutiveFailures.Load()), name)
		if tok := e.token.Load(); tok != nil {
			ch <- prometheus.MustNewConstMetric(descExpiry, prometheus.GaugeValue,
				float64(tok.ExpiresAt.UnixNano())/float64(time.Second), name)
		}
	}
}
