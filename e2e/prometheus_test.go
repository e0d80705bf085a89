//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// promTool returns the path of the Prometheus tool name ("prometheus" or
// "promtool") in $PROMETHEUS_DIR, which `make e2e` sets from
// scripts/install-prometheus.sh. A missing tool fails the test: CI installs it.
func promTool(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("PROMETHEUS_DIR")
	if dir == "" {
		t.Fatal("PROMETHEUS_DIR is not set: run `make e2e` (it installs Prometheus with scripts/install-prometheus.sh) or set it to a directory holding prometheus and promtool")
	}
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("PROMETHEUS_DIR: %v", err)
	}
	return bin
}

// TestMetricsPagePassesPromtool feeds a real Vault's bankauth/metrics page,
// with successes, a bank rejection, a bank outage and a stale token in it,
// to `promtool check metrics` (Prometheus's own parser and linter).
func TestMetricsPagePassesPromtool(t *testing.T) {
	t.Parallel()
	promtool := promTool(t, "promtool")
	b := newBank(t, nil)
	b.configure(t, "rak", emulator.Rakbank)
	b.configure(t, "etz", emulator.Etranzact)
	b.configure(t, "isb", emulator.Isbank)
	b.readToken(t, "rak")
	b.readToken(t, "etz")
	b.readToken(t, "isb")
	b.emu.FailNext(emulator.Rakbank, 1, emulator.Failure{Status: 401})
	if r := b.srv.CLI("", "write", "-f", b.mount+"/token/rak"); r.ExitCode == 0 {
		t.Fatal("a forced refresh succeeded despite the bank's 401")
	}
	b.emu.FailNext(emulator.Isbank, 1, emulator.Failure{Status: 503})
	b.srv.CLI("", "write", "-f", b.mount+"/token/isb")

	code, _, body := b.getMetrics(t, "metrics", b.srv.RootToken)
	if code != http.StatusOK {
		t.Fatalf("metrics: HTTP %d\n%s", code, body)
	}
	for _, want := range []string{`outcome="4xx"`, `outcome="5xx"`, `result="failure"`, "bankauth_token_fetch_consecutive_failures"} {
		if !strings.Contains(body, want) {
			t.Fatalf("the page lacks %s, so promtool would not see it:\n%s", want, body)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// prometheus is a Prometheus server on loopback.
type prometheus struct {
	addr string
}

// startPrometheus runs the Prometheus server with config (written to a file
// in dir) on a loopback port, and stops it when the test ends.
func startPrometheus(t *testing.T, dir, config string) *prometheus {
	t.Helper()
	bin := promTool(t, "prometheus")
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(promTool(t, "promtool"), "check", "config", confPath)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s\n%s", err, out, config)
	}
	p := &prometheus{addr: fmt.Sprintf("127.0.0.1:%d", loopbackPort(t))}
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+confPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("prometheus log:\n%s", log)
		}
	})
	p.waitFor(t, "Prometheus to answer", func() (bool, string) {
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited:\n%s", log)
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return p
}

// waitFor polls cond every 250ms for up to a minute: Prometheus scrapes and
// evaluates on its own schedule.
func (p *prometheus) waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("waited a minute for %s; last: %s", what, last)
}

// api GETs /api/v1/<path> and decodes the "data" member into v.
func (p *prometheus) api(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/api/v1/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		t.Fatalf("prometheus %s: %v %s", path, err, body)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		t.Fatalf("prometheus %s: %v %s", path, err, body)
	}
}

// query runs an instant PromQL query and returns the value of each series
// by its config label ("" when it has none).
func (p *prometheus) query(t *testing.T, q string) map[string]float64 {
	t.Helper()
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	p.api(t, "query?query="+url.QueryEscape(q), &data)
	out := map[string]float64{}
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("query %s: value %v", q, r.Value)
		}
		out[r.Metric["config"]] = v
	}
	return out
}

// shippedScrapeConfig is deploy/prometheus/prometheus.yml, the scrape config
// docs/observability.md points operators to, pointed at srvAddr's mount,
// with a token file and faster intervals. Each edit must apply exactly once,
// so the test breaks if the shipped file changes shape.
func shippedScrapeConfig(t *testing.T, srvAddr, mount, tokenFile string) string {
	t.Helper()
	raw, err := os.ReadFile("../deploy/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs("../deploy/prometheus/bankauth-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	for _, e := range [][2]string{
		{"scrape_interval: 30s", "scrape_interval: 1s"},
		{"evaluation_interval: 30s", "evaluation_interval: 1s"},
		{"- bankauth-rules.yml", "- " + rules},
		{"metrics_path: /v1/bankauth/metrics\n", "metrics_path: /v1/" + mount + "/metrics\n"},
		{"scheme: https", "scheme: http"},
		{"credentials_file: /etc/prometheus/vault-token", "credentials_file: " + tokenFile},
		{`targets: ["vault.example:8200"]`, fmt.Sprintf("targets: [%q]", strings.TrimPrefix(srvAddr, "http://"))},
	} {
		if n := strings.Count(conf, e[0]); n != 1 {
			t.Fatalf("deploy/prometheus/prometheus.yml has %q %d times, want once", e[0], n)
		}
		conf = strings.Replace(conf, e[0], e[1], 1)
	}
	return conf
}

// TestPrometheusScrapesVault runs a real Prometheus server with the shipped
// scrape config and alert rules against a real Vault: it reads
// bankauth/metrics with a monitoring-policy token from a file, sees the
// fetch counter move when a token is fetched, and raises the
// BankauthConnectionFailing alert (pending) when the bank fails.
func TestPrometheusScrapesVault(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "rak", emulator.Rakbank)
	dir := t.TempDir()

	// The monitoring policy of docs/policies.md, in a periodic token.
	policy := filepath.Join(dir, "monitoring.hcl")
	os.WriteFile(policy, []byte(fmt.Sprintf("path %q { capabilities = [\"read\"] }\n", b.mount+"/metrics")), 0o600)
	name := "prometheus-" + b.mount
	if _, err := b.srv.MustCLI("policy", "write", name, policy); err != nil {
		t.Fatal(err)
	}
	out, err := b.srv.MustCLI("token", "create", "-policy="+name, "-period=1h", "-field=token")
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(strings.TrimSpace(out)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	p := startPrometheus(t, dir, shippedScrapeConfig(t, b.srv.Addr, b.mount, tokenFile))
	p.waitFor(t, "a healthy bankauth target", func() (bool, string) {
		var data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		p.api(t, "targets", &data)
		for _, tg := range data.ActiveTargets {
			if tg.Labels["job"] == "bankauth" {
				return tg.Health == "up", tg.Health + " " + tg.LastError
			}
		}
		return false, fmt.Sprint(data)
	})

	fetches := `bankauth_token_fetches_total{job="bankauth",result="success"}`
	b.readToken(t, "rak")
	p.waitFor(t, "the first fetch in Prometheus", func() (bool, string) {
		v := p.query(t, fetches)
		return v["rak"] == 1, fmt.Sprint(v)
	})
	before := b.emu.Stats(emulator.Rakbank).Logins
	if _, err := b.srv.MustCLI("write", "-f", b.mount+"/token/rak"); err != nil {
		t.Fatal(err)
	}
	if got := b.emu.Stats(emulator.Rakbank).Logins; got != before+1 {
		t.Fatalf("the forced refresh made %d logins at the bank, want 1", got-before)
	}
	p.waitFor(t, "the counter to move with the forced fetch", func() (bool, string) {
		v := p.query(t, fetches)
		return v["rak"] == 2, fmt.Sprint(v)
	})

	// The rules are loaded and evaluate against the real series.
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name   string `json:"name"`
				Health string `json:"health"`
			} `json:"rules"`
		} `json:"groups"`
	}
	p.api(t, "rules", &rules)
	shipped, err := os.ReadFile("../deploy/prometheus/bankauth-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Count(string(shipped), "- alert:"); len(rules.Groups) != 1 || len(rules.Groups[0].Rules) != want || want < 4 {
		t.Fatalf("rules loaded: %+v, want the %d alerts of bankauth-rules.yml", rules, want)
	}
	p.waitFor(t, "every rule evaluated without error", func() (bool, string) {
		p.api(t, "rules", &rules)
		for _, r := range rules.Groups[0].Rules {
			if r.Health != "ok" {
				return false, r.Name + ": " + r.Health
			}
		}
		return true, ""
	})
	b.emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 503})
	if r := b.srv.CLI("", "write", "-f", b.mount+"/token/rak"); r.ExitCode == 0 {
		t.Fatal("a forced refresh succeeded while the bank fails")
	}
	p.waitFor(t, "BankauthConnectionFailing to be pending", func() (bool, string) {
		var data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		p.api(t, "alerts", &data)
		for _, a := range data.Alerts {
			if a.Labels["alertname"] == "BankauthConnectionFailing" && a.Labels["config"] == "rak" {
				return a.State == "pending", a.State
			}
		}
		return false, fmt.Sprint(data.Alerts)
	})
}
