//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// TestTokenSurvivesSealUnseal seals and unseals a Vault: sealing unloads
// every mount and ends the plugin process, so after the unseal a new plugin
// process starts with nothing in memory, and must serve the stored token
// without a new bank request.
func TestTokenSurvivesSealUnseal(t *testing.T) {
	t.Parallel()
	srv := ownVault(t, vaulttest.Options{})
	b := newBank(t, srv)
	before := map[string]string{}
	for _, p := range emulator.Providers {
		b.emu.SetTTL(p, time.Hour)
		b.configure(t, p, p)
		before[p] = readVia(t, srv, b.mount, p)
	}
	started := pluginStarts(srv)
	if err := srv.SealUnseal(); err != nil {
		t.Fatal(err)
	}
	for _, p := range emulator.Providers {
		if got := readVia(t, srv, b.mount, p); got != before[p] {
			t.Errorf("%s: after seal/unseal Vault served a new token", p)
		}
	}
	// The reads above went to a new plugin process, not to the old one's
	// memory.
	after := pluginStarts(srv)
	t.Logf("bankauth plugin processes started: %d before the seal, %d after", started, after)
	if after <= started {
		t.Errorf("plugin starts in Vault's log: %d before seal, %d after the reads: was the plugin restarted?", started, after)
	}
	wantFetches(t, b, 1, "after seal/unseal")
}

// pluginStarts counts how often Vault's log says it started a bankauth
// plugin process.
func pluginStarts(srv *vaulttest.Server) int {
	n := 0
	for _, line := range strings.Split(srv.Log(), "\n") {
		if strings.Contains(line, "plugin started") && strings.Contains(line, vaulttest.PluginBinary) {
			n++
		}
	}
	return n
}
