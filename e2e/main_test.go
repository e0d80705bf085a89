//go:build e2e

// Package e2e drives a real Vault server, started from the vault binary in
// $VAULT_BIN, with the bankauth plugin registered and mounted through the
// real vault CLI, against the project's bank emulator over real HTTP.
package e2e

import (
	"fmt"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// vault is the server most tests share; each test uses a mount of its own.
var vault *vaulttest.Server

func TestMain(m *testing.M) {
	s, err := vaulttest.Start(vaulttest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot start Vault:", err)
		os.Exit(1)
	}
	if err := s.RegisterPlugin("bankauth"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		s.Close()
		os.Exit(1)
	}
	vault = s
	code := m.Run()
	// The plugin binary is built with -race under make test: a race it hits
	// inside Vault shows in Vault's log.
	if strings.Contains(s.Log(), "WARNING: DATA RACE") {
		fmt.Fprintln(os.Stderr, "e2e: the plugin reported a data race in Vault's log")
		code = 1
	}
	for _, tok := range seen.list() {
		if strings.Contains(s.Log(), tok) {
			fmt.Fprintln(os.Stderr, "e2e: an access token handed to a test appears in Vault's log")
			code = 1
			break
		}
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: Vault log kept at %s\n", s.LogPath)
		s.Stop()
	} else {
		s.Close()
	}
	os.Exit(code)
}

// ownVault starts a Vault server of the test's own with bankauth
// registered. When the test ends, its log is checked as TestMain checks the
// shared server's: no data race reported by the plugin, no access token
// handed to a test.
func ownVault(t *testing.T, opts vaulttest.Options) *vaulttest.Server {
	t.Helper()
	srv, err := vaulttest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Stop()
		log := srv.Log()
		if strings.Contains(log, "WARNING: DATA RACE") {
			t.Error("the plugin reported a data race in Vault's log")
		}
		for _, tok := range seen.list() {
			if strings.Contains(log, tok) {
				t.Error("an access token handed to a test appears in Vault's log")
				break
			}
		}
		if t.Failed() {
			t.Logf("Vault log kept at %s", srv.LogPath)
			return
		}
		srv.Close()
	})
	if err := srv.RegisterPlugin("bankauth"); err != nil {
		t.Fatal(err)
	}
	return srv
}

var mountSeq atomic.Int64

// bankMount is an emulator on loopback plus a fresh bankauth mount that talks to it.
type bankMount struct {
	emu   *emulator.Server
	url   string
	mount string
	srv   *vaulttest.Server
}

// newBank mounts bankauth at a new path on srv (the shared server when nil)
// and starts an emulator for it.
func newBank(t *testing.T, srv *vaulttest.Server) *bankMount {
	t.Helper()
	if srv == nil {
		srv = vault
	}
	emu := emulator.New(emulator.Options{})
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	mount := fmt.Sprintf("bankauth-%d", mountSeq.Add(1))
	if err := srv.Mount("bankauth", mount); err != nil {
		t.Fatal(err)
	}
	return &bankMount{emu: emu, url: hs.URL, mount: mount, srv: srv}
}

// configure writes <mount>/config/<name> with the vault CLI.
func (b *bankMount) configure(t *testing.T, name, provider string, extra ...string) {
	t.Helper()
	args := []string{"write", b.mount + "/config/" + name}
	args = append(args, kv(emulator.ConfigData(provider, b.url, emulator.DefaultCredentials()))...)
	args = append(args, extra...)
	if _, err := b.srv.MustCLI(args...); err != nil {
		t.Fatal(err)
	}
}

func kv(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(out)
	return out
}

// readToken reads <mount>/token/<name> through vault/api.
func (b *bankMount) readToken(t *testing.T, name string) map[string]any {
	t.Helper()
	sec, err := b.srv.Client.Logical().Read(b.mount + "/token/" + name)
	if err != nil || sec == nil {
		t.Fatalf("read %s/token/%s: %v", b.mount, name, err)
	}
	seen.add(sec.Data["access_token"])
	return sec.Data
}

// seen collects every access token the tests were handed, for log scans.
var seen tokenSet

type tokenSet struct {
	mu   sync.Mutex
	toks map[string]bool
}

func (s *tokenSet) add(v any) {
	tok, _ := v.(string)
	if tok == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.toks == nil {
		s.toks = map[string]bool{}
	}
	s.toks[tok] = true
}

func (s *tokenSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.toks))
	for k := range s.toks {
		out = append(out, k)
	}
	return out
}

func contains(s string, subs ...string) error {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return fmt.Errorf("%q lacks %q", s, sub)
		}
	}
	return nil
}
