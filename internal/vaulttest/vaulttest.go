// Package vaulttest runs real Vault servers for bankauth's end-to-end tests
// and benchmarks: the vault binary installed by scripts/install-vault.sh,
// the plugin binary built from this repository, registered and enabled
// through the real vault CLI.
package vaulttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

// PluginBinary is the file name Vault's plugin catalog runs.
const PluginBinary = "vault-plugin-secrets-bankauth"

// VaultBin returns the vault binary named by $VAULT_BIN.
func VaultBin() (string, error) {
	bin := os.Getenv("VAULT_BIN")
	if bin == "" {
		return "", errors.New("VAULT_BIN is not set: run `make test` (it installs Vault with scripts/install-vault.sh) or set VAULT_BIN to a vault >= 1.21 binary")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("VAULT_BIN: %w", err)
	}
	return bin, nil
}

var buildOnce struct {
	sync.Once
	dir, sum string
	err      error
}

// BuildPlugin builds the plugin binary once per process into a temporary
// plugin directory and returns the directory and the binary's SHA-256.
// With BANKAUTH_RACE=1 the binary is built with the race detector.
func BuildPlugin() (dir, sha string, err error) {
	buildOnce.Do(func() {
		b := &buildOnce
		b.dir, b.err = os.MkdirTemp("", "bankauth-plugins-")
		if b.err != nil {
			return
		}
		bin := filepath.Join(b.dir, PluginBinary)
		args := []string{"build", "-o", bin}
		if os.Getenv("BANKAUTH_RACE") == "1" {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/"+PluginBinary)...)
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building plugin: %v\n%s", err, out)
			return
		}
		b.sum, b.err = fileSHA256(bin)
	})
	return buildOnce.dir, buildOnce.sum, buildOnce.err
}

// repoRoot is the module root, found from this source file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Options shape a server.
type Options struct {
	// Storage is "inmem" (default), "file" or "raft"; file and raft keep
	// their data in DataDir across restarts.
	Storage string
	DataDir string
	// LogLevel defaults to "trace", so log scans see everything.
	LogLevel string
	// RawStorage enables sys/raw (raw_storage_endpoint), through which a
	// benchmark writes a mount's storage entries directly.
	RawStorage bool
}

// Server is a running (or stopped) Vault server.
type Server struct {
	Addr      string // http://127.0.0.1:port
	RootToken string
	Client    *api.Client
	LogPath   string

	bin        string
	dir        string
	pluginDir  string
	pluginSHA  string
	configPath string
	unsealKey  string
	cmd        *exec.Cmd
	logFile    *os.File
	exited     chan struct{}
	// ownGroup runs the server in a process group of its own, so Kill takes
	// its plugin processes down with it, as a crashed machine would.
	ownGroup bool
}

// Start starts, initialises and unseals a Vault server with the plugin
// directory holding a freshly built bankauth plugin.
func Start(opts Options) (*Server, error) {
	s, err := newServer(opts, raftNode{})
	if err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.initUnseal(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// raftNode shapes a raft cluster member; the zero value is a lone server.
type raftNode struct {
	id        string   // node_id; "node1" when empty
	retryJoin []string // leader API addresses to join
	member    bool     // a cluster member: own plugin directory (a copy of the binary) and own process group
}

// newServer writes a server's configuration; it does not start it.
func newServer(opts Options, rn raftNode) (*Server, error) {
	bin, err := VaultBin()
	if err != nil {
		return nil, err
	}
	pluginDir, sum, err := BuildPlugin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bankauth-vault-")
	if err != nil {
		return nil, err
	}
	if rn.member {
		if pluginDir, err = copyPlugin(pluginDir, filepath.Join(dir, "plugins")); err != nil {
			return nil, err
		}
	}
	if opts.Storage == "" {
		opts.Storage = "inmem"
	}
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(dir, "data")
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "trace"
	}
	if rn.id == "" {
		rn.id = "node1"
	}
	port, cport := freePort(), freePort()
	s := &Server{
		Addr: fmt.Sprintf("http://127.0.0.1:%d", port), bin: bin, dir: dir,
		pluginDir: pluginDir, pluginSHA: sum, LogPath: filepath.Join(dir, "vault.log"),
		configPath: filepath.Join(dir, "vault.hcl"), ownGroup: rn.member,
	}
	storage := `storage "inmem" {}`
	switch opts.Storage {
	case "file":
		storage = fmt.Sprintf(`storage "file" { path = %q }`, opts.DataDir)
	case "raft":
		joins := ""
		for _, addr := range rn.retryJoin {
			joins += fmt.Sprintf("\n  retry_join { leader_api_addr = %q }", addr)
		}
		storage = fmt.Sprintf(`storage "raft" { path = %q
  node_id = %q%s
}`, opts.DataDir, rn.id, joins)
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`%s
listener "tcp" {
  address = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable = true
}
api_addr = %q
cluster_addr = "https://127.0.0.1:%d"
plugin_directory = %q
disable_mlock = true
log_level = %q
raw_storage_endpoint = %t
`, storage, port, cport, s.Addr, cport, pluginDir, opts.LogLevel, opts.RawStorage)
	if err := os.WriteFile(s.configPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// copyPlugin puts the plugin binary from src into a new directory dst (a
// hard link where the file system allows, else a copy) and returns dst.
func copyPlugin(src, dst string) (string, error) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	from, to := filepath.Join(src, PluginBinary), filepath.Join(dst, PluginBinary)
	if os.Link(from, to) == nil {
		return dst, nil
	}
	in, err := os.Open(from)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start launches the server process and waits until it answers.
func (s *Server) start() error {
	lf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.logFile = lf
	s.cmd = exec.Command(s.bin, "server", "-config="+s.configPath)
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	s.cmd.Env = append(os.Environ(), "VAULT_ADDR="+s.Addr)
	if s.ownGroup {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	client, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	s.Client = client
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("vault server exited; log:\n%s", s.Log())
		default:
		}
		resp, err := http.Get(s.Addr + "/v1/sys/seal-status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("vault server did not answer in 30s; log:\n%s", s.Log())
}

// initUnseal initialises the server the first time (one key share) and
// unseals it.
func (s *Server) initUnseal() error {
	st, err := s.Client.Sys().InitStatus()
	if err != nil {
		return err
	}
	if !st {
		init, err := s.Client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
		if err != nil {
			return fmt.Errorf("vault operator init: %w", err)
		}
		s.unsealKey, s.RootToken = init.Keys[0], init.RootToken
	}
	if _, err := s.Client.Sys().Unseal(s.unsealKey); err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	s.Client.SetToken(s.RootToken)
	// Wait for the node to become active and able to serve requests.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := s.Client.Sys().ListMounts(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("vault did not become active; log:\n%s", s.Log())
}

// Stop ends the server process (SIGTERM, then SIGKILL after 10s).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.kill()
		<-s.exited
	}
	if s.ownGroup {
		// A raft node that became active after a failover can exit on
		// SIGINT leaving its plugin process behind: end whatever is left of
		// its process group.
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	s.cmd = nil
	s.logFile.Close()
}

// Kill ends the server at once with SIGKILL, with no chance to step down or
// flush anything, as a crash would; in a process group of its own, its
// plugin processes die with it.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.kill()
	<-s.exited
	s.cmd = nil
	s.logFile.Close()
}

func (s *Server) kill() {
	if s.ownGroup {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	} else {
		s.cmd.Process.Kill()
	}
}

// Running reports whether the server process has been started and not
// stopped or killed.
func (s *Server) Running() bool { return s.cmd != nil }

// SealUnseal seals the server (every mount is unloaded and its plugin
// process ends) and unseals it again with its key.
func (s *Server) SealUnseal() error {
	if err := s.Client.Sys().Seal(); err != nil {
		return fmt.Errorf("vault operator seal: %w", err)
	}
	return s.initUnseal()
}

// Restart stops the server and starts it again on the same storage, then
// unseals it.
func (s *Server) Restart() error {
	s.Stop()
	if err := s.start(); err != nil {
		return err
	}
	return s.initUnseal()
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.dir)
}

// Log returns what the server has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// Dir is a scratch directory that lives as long as the server.
func (s *Server) Dir() string { return s.dir }

// CLIResult is the outcome of one vault CLI command.
type CLIResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// CLI runs the real vault CLI against the server with token (root when "").
func (s *Server) CLI(token string, args ...string) CLIResult {
	if token == "" {
		token = s.RootToken
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+s.Addr, "VAULT_TOKEN="+token, "VAULT_FORMAT=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return CLIResult{Stdout: out.String(), Stderr: errb.String(), ExitCode: code}
}

// MustCLI runs the vault CLI as root and fails unless it exits 0.
func (s *Server) MustCLI(args ...string) (string, error) {
	r := s.CLI("", args...)
	if r.ExitCode != 0 {
		return r.Stdout, fmt.Errorf("vault %s: exit %d: %s%s", strings.Join(args, " "), r.ExitCode, r.Stdout, r.Stderr)
	}
	return r.Stdout, nil
}

// RegisterPlugin registers the bankauth binary in the catalog as name, the
// way the README tells users to.
func (s *Server) RegisterPlugin(name string) error {
	_, err := s.MustCLI("plugin", "register", "-sha256="+s.pluginSHA, "-command="+PluginBinary, "secret", name)
	return err
}

// RegisterPluginEnv registers the bankauth binary as name with environment
// variables for its process (vault plugin register -env KEY=VALUE), e.g. an
// egress proxy.
func (s *Server) RegisterPluginEnv(name string, env ...string) error {
	args := []string{"plugin", "register", "-sha256=" + s.pluginSHA, "-command=" + PluginBinary}
	for _, kv := range env {
		args = append(args, "-env", kv)
	}
	_, err := s.MustCLI(append(args, "secret", name)...)
	return err
}

// Mount enables the plugin registered as plugin (bankauth) at path, with
// loopback egress allowed (settings allow_loopback=true): the emulators
// the tests talk to listen on 127.0.0.1, which a mount refuses by default.
func (s *Server) Mount(plugin, path string) error {
	if _, err := s.MustCLI("secrets", "enable", "-path="+path, plugin); err != nil {
		return err
	}
	_, err := s.MustCLI("write", path+"/settings", "allow_loopback=true")
	return err
}
