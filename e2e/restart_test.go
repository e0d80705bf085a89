//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// TestTokenSurvivesVaultRestart uses a Vault with file storage: after a
// restart (a new Vault process and a new plugin process) and a plugin reload,
// the stored token is served without a new bank request.
func TestTokenSurvivesVaultRestart(t *testing.T) {
	t.Parallel()
	srv := ownVault(t, vaulttest.Options{Storage: "file"})
	b := newBank(t, srv)
	for _, p := range emulator.Providers {
		// Long-lived tokens: still fresh however slow the restart, so any
		// bank request after it is bankauth's doing.
		b.emu.SetTTL(p, time.Hour)
		b.configure(t, p, p)
	}
	before := map[string]any{}
	for _, p := range emulator.Providers {
		before[p] = b.readToken(t, p)["access_token"]
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for _, p := range emulator.Providers {
		if got := b.readToken(t, p)["access_token"]; got != before[p] {
			t.Errorf("%s: restarted Vault fetched a new token", p)
		}
	}
	wantFetches(t, b, 1, "after a Vault restart")
	if _, err := srv.MustCLI("plugin", "reload", "-plugin=bankauth"); err != nil {
		t.Fatal(err)
	}
	for _, p := range emulator.Providers {
		if got := b.readToken(t, p)["access_token"]; got != before[p] {
			t.Errorf("%s: reloaded plugin fetched a new token", p)
		}
		if st := b.emu.Stats(p); st.Logins != 1 || st.Total-st.Codes != 1 {
			t.Errorf("%s: bank stats %+v, want a single token request", p, st)
		}
	}
}

// TestNoSecretInVaultLog runs a trace-level Vault through successes, bank
// failures and bad input, then scans its whole log for every credential and
// access token used.
func TestNoSecretInVaultLog(t *testing.T) {
	t.Parallel()
	srv := ownVault(t, vaulttest.Options{LogLevel: "trace"})
	b := newBank(t, srv)
	var tokens []string
	for _, p := range emulator.Providers {
		b.configure(t, p, p)
		tokens = append(tokens, b.readToken(t, p)["access_token"].(string))
		out, _ := srv.MustCLI("write", "-f", "-field=access_token", b.mount+"/token/"+p)
		tokens = append(tokens, strings.TrimSpace(out))
		tokens = append(tokens, b.emu.IssuedSecrets(p)...)
		b.emu.FailNext(p, 1, emulator.Failure{Status: 401})
		srv.CLI("", "write", "-f", b.mount+"/token/"+p)
		// Refresh tokens and İşbank codes are single-use: collect them
		// while they are outstanding.
		tokens = append(tokens, b.emu.IssuedSecrets(p)...)
		b.readToken(t, p)
		tokens = append(tokens, b.emu.IssuedSecrets(p)...)
	}
	// What operators read must not carry them either.
	var shown strings.Builder
	for _, p := range emulator.Providers {
		out, _ := srv.MustCLI("read", "-format=json", b.mount+"/status/"+p)
		shown.WriteString(out)
	}
	_, _, metrics := b.getMetrics(t, "metrics", srv.RootToken)
	shown.WriteString(metrics)
	creds := emulator.DefaultCredentials()
	srv.CLI("", "write", b.mount+"/config/etranzact", "password="+creds.Password, "base_url=http://bank.example")
	srv.Stop()
	log := srv.Log()
	// One structured line per bank request, failures at warn/error, and the
	// request shapes at trace. Key order varies: an external plugin's lines
	// reach Vault as JSON objects.
	for _, want := range [][]string{
		{"[DEBUG]", "bank request:", "config=rakbank", "provider=rakbank", "step=token", "method=POST", "status=200", "latency=", "attempt=1", "outcome=2xx"},
		{"[WARN]", "bank request answered with an error status:", "config=isbank", "step=code", "status=401", "outcome=4xx"},
		{"[ERROR]", "token fetch failed:", "config=rakbank", "HTTP 401"},
		{"[TRACE]", "bank request shape:", "config=accelerationcloud", `request_headers="Accept,Authorization"`, `request_query="grant_type,user_id"`},
		{"[TRACE]", "bank request shape:", "config=etranzact", `request_body_fields="password,username"`},
	} {
		if !hasLine(log, want...) {
			t.Errorf("Vault's log has no line with all of %q", want)
		}
	}
	if len(tokens) < 3*len(emulator.Providers) {
		t.Fatalf("only %d tokens collected", len(tokens))
	}
	for _, s := range append(creds.Secrets(), tokens...) {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("Vault's log contains a secret or token (%d chars)", len(s))
		}
		if s != "" && strings.Contains(shown.String(), s) {
			t.Errorf("status or metrics show a secret or token (%d chars)", len(s))
		}
	}
}

// hasLine reports whether one line of log contains every sub.
func hasLine(log string, subs ...string) bool {
next:
	for _, line := range strings.Split(log, "\n") {
		for _, sub := range subs {
			if !strings.Contains(line, sub) {
				continue next
			}
		}
		return true
	}
	return false
}
