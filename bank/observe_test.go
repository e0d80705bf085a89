package bank_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/go-hclog"
)

type recorder struct {
	mu      sync.Mutex
	events  []bank.RequestEvent
	fetches []error
}

func (r *recorder) BankRequest(ev bank.RequestEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) FetchDone(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fetches = append(r.fetches, err)
}

// TestObserverAndTraceLog fetches from every provider with a trace logger:
// the observer sees each round trip, the log has one structured line per
// request and the request shapes, and no secret, token or code value.
func TestObserverAndTraceLog(t *testing.T) {
	emu, url := newEmu(t)
	var logBuf bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logBuf})
	var issued []string
	for _, p := range emulator.Providers {
		rec := &recorder{}
		c, err := bank.NewClient(configFor(t, p, url), logger.With("config", "c-"+p), loopback)
		if err != nil {
			t.Fatal(err)
		}
		c.SetObserver(rec)
		if _, err := c.Fetch(context.Background(), nil); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		issued = append(issued, emu.IssuedSecrets(p)...)
		// A 503 is retried: every try is observed with its attempt number.
		emu.FailNext(p, -1, emulator.Failure{Status: 503})
		if _, err := c.Fetch(context.Background(), nil); err == nil {
			t.Fatalf("%s: fetch succeeded against a failing bank", p)
		}
		emu.ClearFailures()
		issued = append(issued, emu.IssuedSecrets(p)...)
		c.Close()

		wantSteps := []string{"token", "token", "token", "token"}
		wantAttempts := []int{1, 1, 2, 3}
		if p == emulator.Isbank {
			wantSteps = []string{"code", "token", "code", "code", "code"}
			wantAttempts = []int{1, 1, 1, 2, 3}
		}
		if len(rec.events) != len(wantSteps) {
			t.Fatalf("%s: %d events, want %d: %+v", p, len(rec.events), len(wantSteps), rec.events)
		}
		for i, ev := range rec.events {
			if ev.Step != wantSteps[i] || ev.Provider != p || ev.Attempt != wantAttempts[i] || ev.Latency <= 0 {
				t.Errorf("%s: event %d %+v, want step %s attempt %d", p, i, ev, wantSteps[i], wantAttempts[i])
			}
		}
		last := rec.events[len(rec.events)-1]
		if last.Outcome != bank.Outcome5xx || last.Status != 503 || rec.events[0].Outcome != bank.Outcome2xx {
			t.Errorf("%s: outcomes %+v", p, rec.events)
		}
		if len(rec.fetches) != 2 || rec.fetches[0] != nil || rec.fetches[1] == nil {
			t.Errorf("%s: FetchDone calls %v", p, rec.fetches)
		}
	}
	log := logBuf.String()
	for _, want := range []string{
		"[DEBUG] bank request: config=c-rakbank provider=rakbank step=token method=POST status=200 latency=",
		"attempt=1 outcome=2xx", "attempt=3 outcome=5xx",
		"[WARN]  bank request answered with an error status: config=c-etranzact provider=etranzact step=token",
		"[ERROR] token fetch failed: config=c-rakbank provider=rakbank",
		"[TRACE] bank request shape: config=c-isbank provider=isbank step=code",
		"X-Service-Account-Secret", `request_body_fields="code,grant_type"`, `request_query="grant_type,user_id"`,
		`response_body_fields="access_token,`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if len(issued) < 4 {
		t.Fatalf("emulator reported %d issued secrets", len(issued))
	}
	for _, s := range append(emulator.DefaultCredentials().Secrets(), issued...) {
		if strings.Contains(log, s) {
			t.Errorf("log contains a secret or token (%d chars)", len(s))
		}
	}
	if t.Failed() {
		t.Log(log)
	}
}
