//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// devSetup is a running scripts/dev.sh (what `make dev` runs): a Vault
// server and the bank emulator on ports of its own.
type devSetup struct {
	vaultPort, emuPort int
	dir                string
	out                *lockedBuffer
}

// lockedBuffer is a bytes.Buffer that a process writes while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func loopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDev runs scripts/dev.sh with free ports and a work directory of the
// test's own, and waits until it has printed its instructions. The script
// and everything it started are stopped when the test ends.
func startDev(t *testing.T) *devSetup {
	t.Helper()
	d := &devSetup{vaultPort: loopbackPort(t), emuPort: loopbackPort(t), dir: t.TempDir(), out: &lockedBuffer{}}
	cmd := exec.Command("bash", "scripts/dev.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), fmt.Sprintf("VAULT_PORT=%d", d.vaultPort),
		fmt.Sprintf("EMU_PORT=%d", d.emuPort), "DEV_DIR="+filepath.Join(d.dir, "dev"))
	cmd.Stdout, cmd.Stderr = d.out, d.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("make dev output:\n%s", d.out.String())
		}
	})
	deadline := time.After(5 * time.Minute)
	for !strings.Contains(d.out.String(), "Ctrl-C stops everything.") {
		select {
		case <-exited:
			t.Fatalf("scripts/dev.sh exited before it was ready:\n%s", d.out.String())
		case <-deadline:
			t.Fatalf("scripts/dev.sh not ready after 5 minutes:\n%s", d.out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return d
}

// newUserEnv is the environment of a new shell on a machine with no vault
// on PATH and no VAULT_* variables set.
func newUserEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	var path []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "vault")); err == nil {
			continue
		}
		path = append(path, dir)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal(err)
	}
	return append(env, "PATH="+strings.Join(path, string(filepath.ListSeparator)))
}

// runShell runs script with bash -e in a new user's environment and
// returns its combined output.
func runShell(t *testing.T, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Env = newUserEnv(t)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDevPrintsCommandsThatWork runs `make dev` (scripts/dev.sh) and then
// the commands it prints for "another shell", as a new user would paste
// them into a shell that has no vault on PATH.
func TestDevPrintsCommandsThatWork(t *testing.T) {
	t.Parallel()
	d := startDev(t)
	out := d.out.String()
	start := strings.Index(out, "In another shell:\n")
	end := strings.Index(out, "\nLogs: ")
	if start < 0 || end < start {
		t.Fatalf("no commands for another shell in:\n%s", out)
	}
	var lines []string
	for _, l := range strings.Split(out[start+len("In another shell:\n"):end], "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) < 5 || !strings.HasPrefix(lines[0], "export PATH=") {
		t.Fatalf("printed commands do not start by putting vault on PATH:\n%s", strings.Join(lines, "\n"))
	}
	// Every line must succeed; the markers show which one failed.
	var script strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&script, "echo '>>> %d'\n%s\n", i, l)
	}
	got, err := runShell(t, script.String())
	if err != nil {
		t.Fatalf("printed commands failed: %v\n%s", err, got)
	}
	if strings.Contains(got, "command not found") {
		t.Fatalf("a printed command was not found:\n%s", got)
	}
	// DPoP: the consent's token, after the printed three-command consent.
	want := []string{"access_token", "bankauth_token_fetches_total", `"rakbank"`, "DPoP"}
	if err := contains(got, want...); err != nil {
		t.Fatalf("%v\nwhole output:\n%s", err, got)
	}
}
