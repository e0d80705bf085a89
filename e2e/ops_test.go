//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// status reads <mount>/status/<name> with the vault CLI.
func (b *bankMount) status(t *testing.T, name string) map[string]any {
	t.Helper()
	out, err := b.srv.MustCLI("read", "-format=json", b.mount+"/status/"+name)
	if err != nil {
		t.Fatal(err)
	}
	var sec struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &sec); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	return sec.Data
}

// getMetrics GETs /v1/<mount>/<path> over HTTP (with token unless "") and
// returns the status, content type and body.
func (b *bankMount) getMetrics(t *testing.T, path, token string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.srv.Addr+"/v1/"+b.mount+"/"+path, nil)
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// scrape reads <mount>/metrics with the root token as a Prometheus server
// would and parses the text format.
func (b *bankMount) scrape(t *testing.T) promSamples {
	t.Helper()
	code, ctype, body := b.getMetrics(t, "metrics", b.srv.RootToken)
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain; version=0.0.4") {
		t.Fatalf("metrics: HTTP %d %q\n%s", code, ctype, body)
	}
	return parseProm(t, body)
}

type promSamples map[string]*dto.MetricFamily

func parseProm(t *testing.T, text string) promSamples {
	t.Helper()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("metrics are not valid Prometheus text: %v\n%s", err, text)
	}
	return fams
}

// value sums the samples of name whose labels include want (for a
// histogram: the sample counts).
func (p promSamples) value(name string, want ...string) float64 {
	var sum float64
	mf := p[name]
	if mf == nil {
		return 0
	}
next:
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// TestStatusAndMetricsFollowTheBank drives a config through success, a bank
// outage and recovery on a real Vault, and checks that status/<name> and
// the Prometheus metrics (parsed from the raw text Vault hands out) move
// with what the emulator saw.
func TestStatusAndMetricsFollowTheBank(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "rak", emulator.Rakbank)
	b.configure(t, "isb", emulator.Isbank)

	st := b.status(t, "rak")
	if st["provider"] != "rakbank" || st["token_cached"] != false || num(st["bank_requests"]) != 0 {
		t.Fatalf("status before any read: %v", st)
	}
	for range 3 {
		b.readToken(t, "rak")
	}
	b.readToken(t, "isb")
	st = b.status(t, "rak")
	if st["token_cached"] != true || num(st["bank_requests"]) != 1 || num(st["cache_hits"]) != 2 ||
		num(st["cache_misses"]) != 1 || num(st["consecutive_failures"]) != 0 || st["last_success_at"] == nil || st["last_error"] != nil {
		t.Errorf("status after three reads: %v", st)
	}
	m := b.scrape(t)
	emuTotal := float64(b.emu.Stats(emulator.Rakbank).Total)
	if got := m.value("bankauth_bank_requests_total", "config", "rak"); got != emuTotal || got != 1 {
		t.Errorf("bank requests metric %v, emulator saw %v", got, emuTotal)
	}
	if got := m.value("bankauth_bank_requests_total", "config", "isb", "provider", "isbank"); got != float64(b.emu.Stats(emulator.Isbank).Total) || got != 2 {
		t.Errorf("isbank requests metric %v, emulator saw %+v", got, b.emu.Stats(emulator.Isbank))
	}
	if m.value("bankauth_token_cache_hits_total", "config", "rak") != 2 || m.value("bankauth_token_cache_misses_total", "config", "rak") != 1 ||
		m.value("bankauth_bank_request_duration_seconds", "config", "rak", "outcome", "2xx") != 1 {
		t.Errorf("cache or latency metrics wrong")
	}

	// The bank goes down: a forced refresh retries the 503 (3 attempts in
	// all), fails with the bank's own answer, and the bank is then left
	// alone for a while.
	b.emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 503,
		Body: `{"status":"503","response_code":"ESB-503","response_message":"Backend down"}`})
	if r := b.srv.CLI("", "write", "-f", b.mount+"/token/rak"); r.ExitCode == 0 {
		t.Fatal("forced refresh succeeded against a failing bank")
	}
	st = b.status(t, "rak")
	if num(st["consecutive_failures"]) != 1 || num(st["last_error_http_status"]) != 503 || st["last_error_bank_code"] != "ESB-503" ||
		st["last_error_bank_message"] != "Backend down" || st["last_error_step"] != "token" || st["last_error_at"] == nil ||
		st["bank_backoff_until"] == nil || num(st["bank_requests"]) != 4 || b.emu.Stats(emulator.Rakbank).Total != 4 {
		t.Errorf("status during the outage: %v (emulator %+v)", st, b.emu.Stats(emulator.Rakbank))
	}
	// During the backoff a forced refresh fails without asking the bank. The
	// backoff lasts 1.5-2 s; on a loaded machine the CLI calls above may
	// outlast it, so the check applies only to a write that ended before it.
	until, _ := time.Parse(time.RFC3339, fmt.Sprint(st["bank_backoff_until"]))
	r := b.srv.CLI("", "write", "-f", b.mount+"/token/rak")
	failedFetches, failed5xx := 1.0, 3.0
	if time.Now().Before(until) {
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, "backs off") {
			t.Errorf("forced refresh during the backoff: exit %d %s", r.ExitCode, r.Stderr)
		}
		if got := num(b.status(t, "rak")["bank_requests"]); got != 4 || b.emu.Stats(emulator.Rakbank).Total != 4 {
			t.Errorf("the bank was asked during the backoff: status %v, emulator %+v", got, b.emu.Stats(emulator.Rakbank))
		}
	} else {
		t.Logf("the forced refresh ended after the backoff (%s): not a backoff check", until.Format(time.RFC3339))
		if n := b.emu.Stats(emulator.Rakbank).Total; n > 4 {
			failedFetches, failed5xx = 2, float64(n-1)
		}
	}
	m = b.scrape(t)
	if m.value("bankauth_bank_requests_total", "config", "rak", "outcome", "5xx") != failed5xx ||
		m.value("bankauth_token_fetch_consecutive_failures", "config", "rak") != failedFetches ||
		m.value("bankauth_token_fetches_total", "config", "rak", "result", "failure") != failedFetches {
		t.Errorf("metrics during the outage do not show it")
	}

	// Recovery, once the backoff (seconds) is over.
	b.emu.ClearFailures()
	deadline := time.Now().Add(45 * time.Second)
	for {
		if r := b.srv.CLI("", "write", "-f", b.mount+"/token/rak"); r.ExitCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no recovery within 45 s after the bank came back")
		}
		time.Sleep(500 * time.Millisecond)
	}
	st = b.status(t, "rak")
	if num(st["consecutive_failures"]) != 0 || num(st["bank_requests"]) != float64(b.emu.Stats(emulator.Rakbank).Total) || st["last_error_bank_code"] != "ESB-503" {
		t.Errorf("status after recovery: %v (emulator %+v)", st, b.emu.Stats(emulator.Rakbank))
	}

	// The list shows both configs, with the streak per name.
	out, err := b.srv.MustCLI("list", "-format=json", "-detailed", b.mount+"/status")
	if err != nil {
		t.Fatal(err)
	}
	if err := contains(out, `"rak"`, `"isb"`, `"consecutive_failures"`); err != nil {
		t.Error(err)
	}
}

// TestMetricsNeedATokenUnlessOptedIn checks who may read the metrics on a
// real Vault: a token by default, nobody on metrics/public until the mount's
// setting is on, then anybody.
func TestMetricsNeedATokenUnlessOptedIn(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	if code, _, _ := b.getMetrics(t, "metrics", ""); code != http.StatusForbidden {
		t.Errorf("metrics without a token: HTTP %d, want 403", code)
	}
	// Prometheus sends its credentials as "Authorization: Bearer": Vault takes that too.
	req, _ := http.NewRequest(http.MethodGet, b.srv.Addr+"/v1/"+b.mount+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+b.srv.RootToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("metrics with a bearer token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	code, _, body := b.getMetrics(t, "metrics/public", "")
	if code != http.StatusForbidden || !strings.Contains(body, "unauthenticated_metrics") {
		t.Errorf("metrics/public with the setting off: HTTP %d %s", code, body)
	}
	if _, err := b.srv.MustCLI("write", b.mount+"/settings", "unauthenticated_metrics=true"); err != nil {
		t.Fatal(err)
	}
	code, ctype, body := b.getMetrics(t, "metrics/public", "")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("metrics/public opted in: HTTP %d %q", code, ctype)
	}
	parseProm(t, body)
	if code, _, _ := b.getMetrics(t, "metrics", ""); code != http.StatusForbidden {
		t.Errorf("metrics without a token after opting in: HTTP %d, want 403 (only metrics/public opens)", code)
	}
	if _, err := b.srv.MustCLI("write", b.mount+"/settings", "unauthenticated_metrics=false"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := b.getMetrics(t, "metrics/public", ""); code != http.StatusForbidden {
		t.Errorf("metrics/public after opting out: HTTP %d", code)
	}
}

// TestOpenAPIOperationIDs fetches Vault's OpenAPI document and checks that
// every bankauth operation has the intended, unique operationId, and that
// vault path-help explains each path's fields.
func TestOpenAPIOperationIDs(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	out, err := b.srv.MustCLI("read", "-format=json", "sys/internal/specs/openapi")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data struct {
			Paths map[string]map[string]json.RawMessage `json:"paths"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("openapi JSON: %v", err)
	}
	got := map[string]string{} // "METHOD path" -> operationId
	for path, ops := range doc.Data.Paths {
		rel, ok := strings.CutPrefix(path, "/"+b.mount+"/")
		if !ok {
			continue
		}
		for method, raw := range ops {
			var op struct {
				OperationID string `json:"operationId"`
			}
			if json.Unmarshal(raw, &op) != nil || op.OperationID == "" {
				continue // "parameters" and the like
			}
			got[strings.ToUpper(method)+" "+rel] = op.OperationID
		}
	}
	want := map[string]string{
		"POST config/{name}":    "bankauth-write-config",
		"GET config/{name}":     "bankauth-read-config",
		"DELETE config/{name}":  "bankauth-delete-config",
		"GET config/":           "bankauth-list-configs",
		"GET token/{name}":      "bankauth-read-token",
		"POST token/{name}":     "bankauth-refresh-token",
		"GET status/{name}":     "bankauth-read-status",
		"GET status/":           "bankauth-list-statuses",
		"GET metrics":           "bankauth-read-metrics",
		"GET metrics/public":    "bankauth-read-public-metrics",
		"GET settings":          "bankauth-read-settings",
		"POST settings":         "bankauth-write-settings",
		"POST profile/{name}":   "bankauth-write-profile",
		"GET profile/{name}":    "bankauth-read-profile",
		"DELETE profile/{name}": "bankauth-delete-profile",
		"GET profile/":          "bankauth-list-profiles",
	}
	seen := map[string]string{}
	for k, id := range got {
		if other, dup := seen[id]; dup {
			t.Errorf("operationId %s used by %s and %s", id, k, other)
		}
		seen[id] = k
	}
	for k, id := range want {
		if got[k] != id {
			t.Errorf("%s: operationId %q, want %q", k, got[k], id)
		}
	}
	// Paths added by other features are checked for uniqueness above; that
	// every operation is named through DisplayAttrs is checked on the
	// backend itself (TestEveryOperationIsNamed).
	for k, id := range got {
		if !strings.HasPrefix(id, "bankauth-") {
			t.Errorf("%s: operationId %q lacks the bankauth- prefix", k, id)
		}
	}
	if len(got) < len(want) {
		t.Errorf("bankauth operations in the spec: %v", got)
	}

	for path, fields := range map[string][]string{
		"config/x":       {"provider", "base_url", "client_secret", "oauth_metadata"},
		"config/":        {"List"},
		"token/x":        {"access_token", "expires_in", "force"},
		"status/x":       {"consecutive_failures", "last_error_bank_code", "this node", "since the plugin started"},
		"status/":        {"consecutive_failures"},
		"metrics":        {"bankauth_bank_requests_total", "text"},
		"metrics/public": {"unauthenticated_metrics"},
		"settings":       {"unauthenticated_metrics"},
	} {
		out, err := b.srv.MustCLI("path-help", b.mount+"/"+path)
		if err != nil {
			t.Error(err)
			continue
		}
		if err := contains(out, fields...); err != nil {
			t.Errorf("path-help %s: %v", path, err)
		}
	}
}

// TestMonitoringPolicy checks the monitoring policy of docs/policies.md on
// a real Vault: metrics and status yes, tokens and configs no.
func TestMonitoringPolicy(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "rak", emulator.Rakbank)
	b.readToken(t, "rak")
	policy := fmt.Sprintf(`
path "%[1]s/metrics"  { capabilities = ["read"] }
path "%[1]s/status/*" { capabilities = ["read"] }
path "%[1]s/status"   { capabilities = ["list"] }
`, b.mount)
	path := filepath.Join(t.TempDir(), "monitoring.hcl")
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	name := "monitoring-" + b.mount
	if _, err := b.srv.MustCLI("policy", "write", name, path); err != nil {
		t.Fatal(err)
	}
	out, err := b.srv.MustCLI("token", "create", "-policy="+name, "-field=token")
	if err != nil {
		t.Fatal(err)
	}
	mon := strings.TrimSpace(out)
	if code, _, body := b.getMetrics(t, "metrics", mon); code != http.StatusOK {
		t.Errorf("monitoring token reading metrics: HTTP %d %s", code, body)
	}
	for _, args := range [][]string{{"read", b.mount + "/status/rak"}, {"list", b.mount + "/status"}} {
		if r := b.srv.CLI(mon, args...); r.ExitCode != 0 {
			t.Errorf("monitoring token: vault %s: %s", strings.Join(args, " "), r.Stderr)
		}
	}
	for _, args := range [][]string{{"read", b.mount + "/token/rak"}, {"read", b.mount + "/config/rak"}, {"write", b.mount + "/settings", "unauthenticated_metrics=true"}} {
		if r := b.srv.CLI(mon, args...); r.ExitCode == 0 || !strings.Contains(r.Stderr, "Code: 403") {
			t.Errorf("monitoring token ran vault %s: exit %d %s", strings.Join(args, " "), r.ExitCode, r.Stderr)
		}
	}
}
