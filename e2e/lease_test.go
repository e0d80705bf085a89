//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// cliSecret is `vault read -format=json` output.
type cliSecret struct {
	LeaseID       string         `json:"lease_id"`
	LeaseDuration int            `json:"lease_duration"`
	Renewable     bool           `json:"renewable"`
	Data          map[string]any `json:"data"`
}

func (b *bankMount) cliRead(t *testing.T, path string) cliSecret {
	t.Helper()
	out, err := b.srv.MustCLI("read", "-format=json", b.mount+"/"+path)
	if err != nil {
		t.Fatal(err)
	}
	var sec cliSecret
	if err := json.Unmarshal([]byte(out), &sec); err != nil {
		t.Fatal(err)
	}
	return sec
}

func TestLeaseFalseOnRealVault(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "etz", emulator.Etranzact, "lease=false")
	if cfg := b.cliRead(t, "config/etz"); cfg.Data["lease"] != false {
		t.Fatalf("config read lease=%v, want false", cfg.Data["lease"])
	}
	sec := b.cliRead(t, "token/etz")
	tok, _ := sec.Data["access_token"].(string)
	seen.add(tok)
	if sec.LeaseID != "" || sec.LeaseDuration != 0 || sec.Renewable {
		t.Errorf("lease=false read: lease_id=%q lease_duration=%d renewable=%t, want none", sec.LeaseID, sec.LeaseDuration, sec.Renewable)
	}
	if !b.emu.TokenValid(emulator.Etranzact, tok) {
		t.Error("token not valid at the bank")
	}
	in, _ := sec.Data["expires_in"].(float64)
	at, err := time.Parse(time.RFC3339, sec.Data["expires_at"].(string))
	if in < 55 || in > 60 || err != nil || time.Until(at) < 50*time.Second || time.Until(at) > 61*time.Second {
		t.Errorf("expires_in=%v expires_at=%v (%v), want about a minute ahead", sec.Data["expires_in"], sec.Data["expires_at"], err)
	}
	// Through vault/api too, as applications read it.
	if s, err := b.srv.Client.Logical().Read(b.mount + "/token/etz"); err != nil || s.LeaseID != "" || s.LeaseDuration != 0 {
		t.Errorf("api read: %+v %v", s, err)
	}

	// Switching leases back on: the same read carries a lease again.
	if _, err := b.srv.MustCLI("write", b.mount+"/config/etz", "lease=true"); err != nil {
		t.Fatal(err)
	}
	sec = b.cliRead(t, "token/etz")
	seen.add(sec.Data["access_token"])
	if !strings.HasPrefix(sec.LeaseID, b.mount+"/token/etz/") || sec.LeaseDuration < 55 || sec.LeaseDuration > 60 || sec.Renewable {
		t.Errorf("lease=true read: lease_id=%q lease_duration=%d renewable=%t", sec.LeaseID, sec.LeaseDuration, sec.Renewable)
	}
	if cfg := b.cliRead(t, "config/etz"); cfg.Data["lease"] != true {
		t.Errorf("config read lease=%v, want true", cfg.Data["lease"])
	}
}

func TestLeaseBadValueIs400OnRealVault(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "rak", emulator.Rakbank)
	r := b.srv.CLI("", "write", b.mount+"/config/rak", "lease=maybe")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "Code: 400") || !strings.Contains(r.Stderr, "invalid lease: expected a boolean") || strings.Contains(r.Stderr, "maybe") {
		t.Fatalf("lease=maybe: exit %d: %s", r.ExitCode, r.Stderr)
	}
	if cfg := b.cliRead(t, "config/rak"); cfg.Data["lease"] != true {
		t.Errorf("rejected write changed lease to %v", cfg.Data["lease"])
	}
}
