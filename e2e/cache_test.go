//go:build e2e

package e2e

import (
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// TestCacheFalseThroughVault: with cache=false every read is a new token
// from the bank, each with its own lease; switching back caches again.
func TestCacheFalseThroughVault(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "ac", emulator.AccelerationCloud, "cache=false")
	leases := map[string]bool{}
	tokens := map[string]bool{}
	for i := 0; i < 3; i++ {
		sec, err := b.srv.Client.Logical().Read(b.mount + "/token/ac")
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := sec.Data["access_token"].(string)
		seen.add(tok)
		if tokens[tok] || leases[sec.LeaseID] || !b.emu.TokenValid(emulator.AccelerationCloud, tok) || sec.Renewable {
			t.Fatalf("read %d: token reused, lease reused or token invalid", i)
		}
		tokens[tok], leases[sec.LeaseID] = true, true
	}
	if n := b.emu.Stats(emulator.AccelerationCloud).Logins; n != 3 {
		t.Fatalf("%d bank logins for 3 reads with cache=false", n)
	}
	out, err := b.srv.MustCLI("read", "-field=cache", b.mount+"/config/ac")
	if err != nil || out != "false" {
		t.Fatalf("config read cache: %q %v", out, err)
	}
	if _, err := b.srv.MustCLI("write", b.mount+"/config/ac", "cache=true"); err != nil {
		t.Fatal(err)
	}
	first := b.readToken(t, "ac")["access_token"]
	if b.readToken(t, "ac")["access_token"] != first || b.emu.Stats(emulator.AccelerationCloud).Logins != 4 {
		t.Fatal("cache=true does not cache")
	}
}
