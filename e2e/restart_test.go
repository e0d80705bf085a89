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
	srv, err := vaulttest.Start(vaulttest.Options{Storage: "file"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.RegisterPlugin("bankauth"); err != nil {
		t.Fatal(err)
	}
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
	srv, err := vaulttest.Start(vaulttest.Options{LogLevel: "trace"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.RegisterPlugin("bankauth"); err != nil {
		t.Fatal(err)
	}
	b := newBank(t, srv)
	var tokens []string
	for _, p := range emulator.Providers {
		b.configure(t, p, p)
		tokens = append(tokens, b.readToken(t, p)["access_token"].(string))
		out, _ := srv.MustCLI("write", "-f", "-field=access_token", b.mount+"/token/"+p)
		tokens = append(tokens, strings.TrimSpace(out))
		b.emu.FailNext(p, 1, emulator.Failure{Status: 401})
		srv.CLI("", "write", "-f", b.mount+"/token/"+p)
	}
	creds := emulator.DefaultCredentials()
	srv.CLI("", "write", b.mount+"/config/etranzact", "password="+creds.Password, "base_url=http://bank.example")
	srv.Stop()
	log := srv.Log()
	if !strings.Contains(log, "bank request") {
		t.Fatal("the log has no bank request lines: is the plugin logging at all?")
	}
	for _, s := range append(creds.Secrets(), tokens...) {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("Vault's log contains a secret or token (%d chars)", len(s))
		}
	}
}
