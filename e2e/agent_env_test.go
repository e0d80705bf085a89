//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// TestAgentExecRendersTokenIntoEnv runs the real vault agent in process
// supervisor mode with the env_template + exec configuration docs/agent.md
// shows: the child process gets a live token in its environment, and is
// restarted with a new one when the token is replaced.
func TestAgentExecRendersTokenIntoEnv(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.emu.SetTTL(emulator.Etranzact, 10*time.Second)
	b.configure(t, "etz", emulator.Etranzact)
	app := appToken(t, b.srv, b.mount+"/token/etz")

	dir := t.TempDir()
	tokenFile, out := filepath.Join(dir, "vault-token"), filepath.Join(dir, "env-tokens")
	os.WriteFile(tokenFile, []byte(app), 0o600)
	conf := fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "token_file" {
    config = { token_file_path = %q }
  }
}
env_template "ETRANZACT_TOKEN" {
  contents             = "{{ with secret \"%s/token/etz\" }}{{ .Data.access_token }}{{ end }}"
  error_on_missing_key = true
}
exec {
  command                   = ["sh", "-c", "printf '%%s\\n' \"$ETRANZACT_TOKEN\" >> %s; exec sleep 90 </dev/null >/dev/null 2>&1"]
  restart_on_secret_changes = "always"
  restart_stop_signal       = "SIGTERM"
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
	// Stop Agent the way an operator would, so that it stops its child too;
	// and never wait long for a child that kept the output pipe.
	agent.Cancel = func() error { return agent.Process.Signal(syscall.SIGTERM) }
	agent.WaitDelay = 10 * time.Second
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); agent.Wait() }()

	// Each start of the child appends the token it saw; 10 s tokens should
	// bring a restart within about 10 s.
	var starts []string
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) && len(starts) < 2 {
		data, _ := os.ReadFile(out)
		lines := strings.Fields(string(data))
		for _, tok := range lines[len(starts):] {
			seen.add(tok)
			if !b.emu.TokenValid(emulator.Etranzact, tok) {
				t.Fatalf("child %d started with a token the bank does not accept\nagent log:\n%s", len(starts)+1, agentLog.String())
			}
			starts = append(starts, tok)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(starts) < 2 {
		t.Fatalf("child started %d times in 45 s with 10 s tokens, want a restart with a new token\nagent log:\n%s", len(starts), agentLog.String())
	}
	if starts[0] == starts[1] {
		t.Errorf("the restarted child got the same token")
	}
}
