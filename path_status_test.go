package bankauth

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestStatusFollowsReadsAndFailures(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	// The test steps the clock past backoffs; no background refresh meanwhile.
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"background_refresh_idle": 0})

	st := e.mustOK(t, logical.ReadOperation, "status/rak", nil).Data
	if st["provider"] != emulator.Rakbank || st["token_cached"] != false || st["bank_requests"] != uint64(0) || st["last_error"] != nil {
		t.Fatalf("status before any read: %v", st)
	}

	tok := e.mustOK(t, logical.ReadOperation, "token/rak", nil).Data["access_token"].(string)
	e.mustOK(t, logical.ReadOperation, "token/rak", nil)
	st = e.mustOK(t, logical.ReadOperation, "status/rak", nil).Data
	want := map[string]any{"token_cached": true, "bank_requests": uint64(1), "cache_hits": uint64(1),
		"cache_misses": uint64(1), "consecutive_failures": int64(0), "has_refresh_token": false}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, st[k], st[k], v)
		}
	}
	if st["token_expires_at"] == nil || st["last_success_at"] == nil || st["token_fresh_until"] == nil {
		t.Errorf("token times missing: %v", st)
	}

	// The bank fails (a 500 is not retried): the failure is kept with the
	// bank's own answer, and the bank is left alone for a while.
	e.emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 500,
		Body: `{"status":"500","response_code":"ESB-500","response_message":"Backend down"}`})
	forceFails := func() {
		t.Helper()
		if resp, err := e.request(t, logical.UpdateOperation, "token/rak", nil); err == nil && !resp.IsError() {
			t.Fatal("forced refresh succeeded against a failing bank")
		}
	}
	forceFails()
	st = e.mustOK(t, logical.ReadOperation, "status/rak", nil).Data
	want = map[string]any{"consecutive_failures": int64(1), "fetch_failures": uint64(1), "bank_requests": uint64(2),
		"last_error_provider": "rakbank", "last_error_step": "token", "last_error_http_status": 500,
		"last_error_bank_code": "ESB-500", "last_error_bank_message": "Backend down"}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("after a failure %s = %v (%T), want %v", k, st[k], st[k], v)
		}
	}
	if msg, _ := st["last_error"].(string); !strings.Contains(msg, "rakbank token request failed: HTTP 500") {
		t.Errorf("last_error %q", msg)
	}
	if st["last_error_at"] == nil || st["bank_backoff_until"] == nil {
		t.Errorf("no last_error_at or bank_backoff_until: %v", st)
	}
	// During the backoff a forced refresh fails without a bank request.
	forceFails()
	if st = e.mustOK(t, logical.ReadOperation, "status/rak", nil).Data; st["bank_requests"] != uint64(2) || st["consecutive_failures"] != int64(1) {
		t.Errorf("during the backoff: %v", st)
	}
	// The backoff over (reset here rather than waited for), a second failure
	// makes a streak of two.
	e.step(broker.FailureBackoffMax)
	forceFails()
	if st = e.mustOK(t, logical.ReadOperation, "status/rak", nil).Data; st["consecutive_failures"] != int64(2) || st["bank_requests"] != uint64(3) {
		t.Errorf("second failure: %v", st)
	}

	// A success ends the streak but keeps the last error.
	e.emu.ClearFailures()
	e.step(broker.FailureBackoffMax)
	e.mustOK(t, logical.UpdateOperation, "token/rak", nil)
	st = e.mustOK(t, logical.ReadOperation, "status/rak", nil).Data
	if st["consecutive_failures"] != int64(0) || st["last_error_bank_code"] != "ESB-500" || st["bank_backoff_until"] != nil {
		t.Errorf("after recovery: %v", st)
	}
	text := stringify(st)
	for _, s := range append(emulator.DefaultCredentials().Secrets(), tok) {
		if strings.Contains(text, s) {
			t.Errorf("status shows a secret or token: %s", text)
		}
	}

	// The list shows every config with its streak.
	list := e.mustOK(t, logical.ListOperation, "status/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != 1 || keys[0] != "rak" {
		t.Fatalf("list %v", list.Data)
	}
	info := list.Data["key_info"].(map[string]any)["rak"].(map[string]any)
	if info["consecutive_failures"] != int64(0) || info["bank_requests"] != uint64(4) || info["last_error_at"] == nil {
		t.Errorf("key_info %v", info)
	}

	// A name with no config has no status.
	if resp, err := e.request(t, logical.ReadOperation, "status/nope", nil); !isNotFound(resp, err) {
		t.Errorf("status of a missing config: %v %v", resp, err)
	}
}

// A bank's Retry-After cannot park a connection for more than 15 minutes,
// and status says when it was cut (the old code showed
// bank_backoff_until=2319-... for a date in year 9999).
func TestStatusCapsRetryAfter(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "etz", emulator.Etranzact)
	e.emu.FailNext(emulator.Etranzact, 1, emulator.Failure{Status: http.StatusTooManyRequests,
		Header: http.Header{"Retry-After": {"Fri, 31 Dec 9999 23:59:59 GMT"}}})
	before := time.Now()
	if _, err := e.request(t, logical.ReadOperation, "token/etz", nil); err == nil {
		t.Fatal("read succeeded through a 429")
	}
	st := e.mustOK(t, logical.ReadOperation, "status/etz", nil).Data
	until, err := time.Parse(time.RFC3339, fmt.Sprint(st["bank_backoff_until"]))
	if err != nil || until.After(before.Add(15*time.Minute+time.Second)) || until.Before(before.Add(14*time.Minute)) {
		t.Fatalf("bank_backoff_until %v, want about 15 minutes on", st["bank_backoff_until"])
	}
	if st["bank_backoff_capped"] != true || !strings.Contains(fmt.Sprint(st["last_error"]), "capped") {
		t.Fatalf("status does not say the wait was capped: %v", st)
	}
}
