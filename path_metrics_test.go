package bankauth

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape reads path and parses its Prometheus text.
func (e *testEnv) scrape(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	resp := e.mustOK(t, logical.ReadOperation, path, nil)
	if resp.Data[logical.HTTPStatusCode] != http.StatusOK || !strings.HasPrefix(resp.Data[logical.HTTPContentType].(string), "text/plain; version=0.0.4") {
		t.Fatalf("raw response %v %v", resp.Data[logical.HTTPStatusCode], resp.Data[logical.HTTPContentType])
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(resp.Data[logical.HTTPRawBody].([]byte)))
	if err != nil {
		t.Fatalf("parsing metrics: %v", err)
	}
	return fams
}

// sample finds the value of the metric in fams whose labels include want;
// for a histogram, its sample count. ok=false when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := fams[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsMoveWithTheBank(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "isb", emulator.Isbank)
	e.mustOK(t, logical.ReadOperation, "token/isb", nil)
	e.mustOK(t, logical.ReadOperation, "token/isb", nil)
	e.emu.FailNext(emulator.Isbank, 1, emulator.Failure{Status: 401})
	e.request(t, logical.UpdateOperation, "token/isb", nil)
	e.b.observeRefreshLag(1500 * time.Millisecond)

	fams := e.scrape(t, "metrics")
	cfg := map[string]string{"config": "isb"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"bankauth_bank_requests_total", map[string]string{"config": "isb", "provider": "isbank", "step": "code", "outcome": "2xx"}, 1},
		{"bankauth_bank_requests_total", map[string]string{"config": "isb", "step": "token", "outcome": "2xx"}, 1},
		{"bankauth_bank_requests_total", map[string]string{"config": "isb", "step": "code", "outcome": "4xx"}, 1},
		{"bankauth_bank_request_duration_seconds", map[string]string{"config": "isb", "outcome": "2xx"}, 2},
		{"bankauth_bank_request_duration_seconds", map[string]string{"config": "isb", "outcome": "4xx"}, 1},
		{"bankauth_token_fetches_total", map[string]string{"config": "isb", "result": "success"}, 1},
		{"bankauth_token_fetches_total", map[string]string{"config": "isb", "result": "failure"}, 1},
		{"bankauth_token_cache_hits_total", cfg, 1},
		{"bankauth_token_cache_misses_total", cfg, 1},
		{"bankauth_token_fetch_consecutive_failures", cfg, 1},
		{"bankauth_tokens_served_stale_total", cfg, 0},
		{"bankauth_background_refresh_lag_seconds", nil, 1},
		{"bankauth_handler_panics_total", nil, 0},
	}
	for _, c := range checks {
		if got, ok := sample(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %t), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The latency histogram merges the code and token steps: buckets are
	// cumulative and the last one holds every request.
	for _, m := range fams["bankauth_bank_request_duration_seconds"].Metric {
		h, prev := m.Histogram, uint64(0)
		for _, bk := range h.Bucket {
			if bk.GetCumulativeCount() < prev {
				t.Errorf("buckets not cumulative: %v", h.Bucket)
			}
			prev = bk.GetCumulativeCount()
		}
		if prev != h.GetSampleCount() || h.GetSampleSum() <= 0 {
			t.Errorf("histogram %v: last bucket %d, count %d, sum %v", m.Label, prev, h.GetSampleCount(), h.GetSampleSum())
		}
	}
	if _, ok := sample(fams, "bankauth_token_expiry_timestamp_seconds", cfg); !ok {
		t.Error("no token expiry gauge")
	}
	if _, ok := fams["process_resident_memory_bytes"]; !ok {
		t.Error("no process metrics")
	}
}

func TestPublicMetricsNeedTheSetting(t *testing.T) {
	e := newTestEnv(t)
	_, err := e.request(t, logical.ReadOperation, "metrics/public", nil)
	if coded, ok := err.(logical.HTTPCodedError); !ok || coded.Code() != http.StatusForbidden {
		t.Fatalf("metrics/public with the setting off: %v, want 403", err)
	}
	if got := e.mustOK(t, logical.ReadOperation, "settings", nil).Data["unauthenticated_metrics"]; got != false {
		t.Fatalf("default unauthenticated_metrics %v", got)
	}
	e.mustOK(t, logical.UpdateOperation, "settings", map[string]any{"unauthenticated_metrics": true})
	e.scrape(t, "metrics/public")
	if resp, err := e.request(t, logical.UpdateOperation, "settings", map[string]any{"unauthenticated_metrics": "maybe"}); err == nil && !resp.IsError() {
		t.Error("a non-boolean setting was accepted")
	}
	e.mustOK(t, logical.UpdateOperation, "settings", map[string]any{"unauthenticated_metrics": false})
	if _, err := e.request(t, logical.ReadOperation, "metrics/public", nil); err == nil {
		t.Error("metrics/public still served after switching it off")
	}
}

func TestPublicMetricsPathIsUnauthenticated(t *testing.T) {
	e := newTestEnv(t)
	got := e.b.SpecialPaths().Unauthenticated
	// Nothing else is reachable without a token: the metrics, and JWK Sets
	// each key opts into (path_jwks.go).
	if len(got) != 2 || got[0] != publicMetricsPath || got[1] != publicJWKSPaths {
		t.Errorf("unauthenticated paths %v", got)
	}
}

// TestLifecycleHooksFeedTheMetrics checks the two figures token lifecycle
// code reports: a background refresh's lag, and a stale token served while
// the bank fails.
func TestLifecycleHooksFeedTheMetrics(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Etranzact, time.Minute)
	e.emu.SetTTL(emulator.Rakbank, time.Minute)
	e.configure(t, "etz", emulator.Etranzact)
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"background_refresh_idle": 0})
	e.token(t, "etz")
	e.token(t, "rak")
	e.step(43 * time.Second) // etz is renewed at 42s
	if st := e.emu.Stats(emulator.Etranzact); st.Refreshes != 1 {
		t.Fatalf("no background refresh: %+v", st)
	}
	// step waited for the refresh to finish, its lag recorded included.
	fams := e.scrape(t, "metrics")
	if got, _ := sample(fams, "bankauth_background_refresh_lag_seconds", nil); got != 1 {
		t.Errorf("refresh lag observations %v, want 1", got)
	}
	if got, _ := sample(fams, "bankauth_bank_requests_total", map[string]string{"config": "etz", "step": "refresh", "outcome": "2xx"}); got != 1 {
		t.Errorf("background refresh requests %v, want 1", got)
	}

	// A stale but valid token, and a bank that fails: the read is served
	// that token with a warning, and counted.
	e.step(6 * time.Second) // rak is stale at 48s
	e.emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 500})
	resp := e.mustOK(t, logical.ReadOperation, "token/rak", nil)
	if len(resp.Warnings) == 0 {
		t.Fatalf("stale token not served with a warning: %v", resp.Warnings)
	}
	if got := e.mustOK(t, logical.ReadOperation, "status/rak", nil).Data["stale_served"]; got != uint64(1) {
		t.Errorf("stale_served %v, want 1", got)
	}
	if got, _ := sample(e.scrape(t, "metrics"), "bankauth_tokens_served_stale_total", map[string]string{"config": "rak"}); got != 1 {
		t.Errorf("stale metric %v, want 1", got)
	}
}
