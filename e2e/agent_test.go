//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// appToken creates a Vault token whose only policy is read on one token path.
func appToken(t *testing.T, srv *vaulttest.Server, path string) string {
	t.Helper()
	name := "app-" + strings.NewReplacer("/", "-").Replace(path)
	policy := filepath.Join(t.TempDir(), "policy.hcl")
	os.WriteFile(policy, []byte(fmt.Sprintf("path %q {\n  capabilities = [\"read\"]\n}\n", path)), 0o600)
	if _, err := srv.MustCLI("policy", "write", name, policy); err != nil {
		t.Fatal(err)
	}
	out, err := srv.MustCLI("token", "create", "-policy="+name, "-field=token")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestAppPolicyReadsOnlyItsToken(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "etz", emulator.Etranzact)
	b.configure(t, "other", emulator.AccelerationCloud)
	app := appToken(t, b.srv, b.mount+"/token/etz")
	if r := b.srv.CLI(app, "read", "-field=access_token", b.mount+"/token/etz"); r.ExitCode != 0 {
		t.Fatalf("app cannot read its token: %s", r.Stderr)
	} else {
		seen.add(strings.TrimSpace(r.Stdout))
	}
	denied := [][]string{
		{"read", b.mount + "/token/other"},
		{"read", b.mount + "/config/etz"},
		{"list", b.mount + "/config"},
		{"write", "-f", b.mount + "/token/etz"},
		{"write", b.mount + "/config/etz", "username=evil"},
		{"delete", b.mount + "/config/etz"},
	}
	for _, args := range denied {
		if r := b.srv.CLI(app, args...); r.ExitCode == 0 || !strings.Contains(r.Stderr, "Code: 403") {
			t.Errorf("app ran vault %s: exit %d %s", strings.Join(args, " "), r.ExitCode, r.Stderr)
		}
	}
}

// TestAgentRendersOnlyLiveTokens runs a real vault agent, authenticated with
// an app token, rendering a template of a 60-second token for two minutes.
// Every poll of the rendered file must find a token the bank still accepts,
// and every re-render must bring a new token.
func TestAgentRendersOnlyLiveTokens(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.emu.SetTTL(emulator.Etranzact, 60*time.Second)
	b.configure(t, "etz", emulator.Etranzact)
	app := appToken(t, b.srv, b.mount+"/token/etz")

	dir := t.TempDir()
	tokenFile, out := filepath.Join(dir, "vault-token"), filepath.Join(dir, "bank-token")
	os.WriteFile(tokenFile, []byte(app), 0o600)
	conf := fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "token_file" {
    config = { token_file_path = %q }
  }
}
template_config { exit_on_retry_failure = true }
template {
  contents    = "{{ with secret \"%s/token/etz\" }}{{ .Data.access_token }}{{ end }}"
  destination = %q
}
`, b.srv.Addr, tokenFile, b.mount, out)
	confPath := filepath.Join(dir, "agent.hcl")
	os.WriteFile(confPath, []byte(conf), 0o600)

	bin, _ := vaulttest.VaultBin()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent := exec.CommandContext(ctx, bin, "agent", "-config="+confPath, "-log-level=debug")
	var agentLog strings.Builder
	agent.Stdout, agent.Stderr = &agentLog, &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); agent.Wait() }()

	const watch = 125 * time.Second
	var renders []string
	var renderedAt []time.Time
	deadline := time.Now().Add(watch)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(out)
		tok := strings.TrimSpace(string(data))
		if tok != "" {
			if len(renders) == 0 || renders[len(renders)-1] != tok {
				renders = append(renders, tok)
				renderedAt = append(renderedAt, time.Now())
				seen.add(tok)
			}
			if !b.emu.TokenValid(emulator.Etranzact, tok) {
				exp, _ := b.emu.TokenExpiry(emulator.Etranzact, tok)
				t.Fatalf("rendered token expired at %s (now %s)\nagent log:\n%s", exp, time.Now(), agentLog.String())
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(renders) < 3 {
		t.Fatalf("%d renders in %s of 60s tokens, want at least 3\nagent log:\n%s", len(renders), watch, agentLog.String())
	}
	for i := 1; i < len(renders); i++ {
		t.Logf("render %d after %s", i, renderedAt[i].Sub(renderedAt[i-1]).Round(time.Second))
		for j := 0; j < i; j++ {
			if renders[i] == renders[j] {
				t.Fatalf("render %d repeated token %d", i, j)
			}
		}
	}
	// The background refresh renews the token before Agent comes back for
	// it, so the bank may have issued one token that is not rendered yet.
	if st := b.emu.Stats(emulator.Etranzact); st.Logins+st.Refreshes < len(renders) || st.Logins+st.Refreshes > len(renders)+1 {
		t.Errorf("bank issued %d tokens for %d renders, want one per render (plus the next one)", st.Logins+st.Refreshes, len(renders))
	}
}
