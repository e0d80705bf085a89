package broker

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/jonboulle/clockwork"
)

// memStore is a Store in memory.
type memStore struct {
	mu      sync.Mutex
	configs map[string]*bank.Config
	tokens  map[string]*bank.Token
	budgets map[string][]time.Time
}

func newMemStore() *memStore {
	return &memStore{configs: map[string]*bank.Config{}, tokens: map[string]*bank.Token{}, budgets: map[string][]time.Time{}}
}

func (m *memStore) Config(_ context.Context, name string) (*bank.Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cfg := m.configs[name]; cfg != nil {
		cp := *cfg
		return &cp, nil
	}
	return nil, nil
}

func (m *memStore) Token(_ context.Context, name string) (*bank.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens[name], nil
}

func (m *memStore) PutToken(_ context.Context, name string, tok *bank.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[name] = tok
	return nil
}

func (m *memStore) Budget(_ context.Context, name string) ([]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.budgets[name], nil
}

func (m *memStore) ClientOptions(context.Context) ([]bank.Option, error) {
	return []bank.Option{bank.WithEgress(loopbackEgress)}, nil
}

// loopbackEgress lets the tests' clients reach the emulator on 127.0.0.1.
var loopbackEgress, _ = bank.NewEgress(bank.EgressPolicy{AllowLoopback: true})

func (m *memStore) PutBudget(_ context.Context, name string, sent []time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.budgets[name] = sent
	return nil
}

// env is a broker on a fake clock and an in-memory store, next to the
// project's bank emulator over real HTTP.
type env struct {
	b     *Broker
	st    *memStore
	clock *clockwork.FakeClock
	emu   *emulator.Server
	url   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	emu := emulator.New(emulator.Options{})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	clock := clockwork.NewFakeClockAt(time.Now())
	st := newMemStore()
	b := New(Options{Clock: clock, Store: st})
	t.Cleanup(b.Close)
	return &env{b: b, st: st, clock: clock, emu: emu, url: srv.URL}
}

// configure stores a rakbank config against the emulator.
func (e *env) configure(name string) {
	creds := emulator.DefaultCredentials()
	cfg := &bank.Config{Provider: emulator.Rakbank, BaseURL: e.url,
		Settings: map[string]string{"client_id": creds.ClientID, "scope": "accounts"},
		Secrets:  map[string]string{"client_secret": creds.ClientSecret}}
	e.st.mu.Lock()
	e.st.configs[name] = cfg
	e.st.mu.Unlock()
}

func TestManyReadersOfAStaleTokenMakeOneRequest(t *testing.T) {
	e := newEnv(t)
	e.configure("rak")
	ctx := context.Background()
	first, err := e.b.Get(ctx, e.st, "rak")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour) // long expired
	e.emu.SetLatency(emulator.Rakbank, 50*time.Millisecond)
	var wg sync.WaitGroup
	got := make([]string, 100)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := e.b.Get(ctx, e.st, "rak"); err == nil {
				got[i] = res.Token.AccessToken
			}
		}()
	}
	wg.Wait()
	for _, tok := range got {
		if tok == "" || tok == first.Token.AccessToken || tok != got[0] {
			t.Fatalf("readers got different, old or no tokens")
		}
	}
	if n := e.emu.Stats(emulator.Rakbank).Total; n != 2 {
		t.Fatalf("%d bank requests, want 2 (one per token)", n)
	}
}

// Background refresh of 2,000 tokens is one goroutine and one timer: the
// count of goroutines does not grow with the names, and Close ends it.
func TestOneSchedulerServesAllNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := runtime.NumGoroutine()
	const names = 2_000
	for i := range names {
		name := fmt.Sprintf("c%05d", i)
		e.configure(name)
		if _, err := e.b.Get(ctx, e.st, name); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.b.Planned(); n != names {
		t.Fatalf("%d refreshes planned, want %d", n, names)
	}
	if grown := runtime.NumGoroutine() - base; grown > 5 {
		t.Fatalf("goroutines grew by %d for %d planned refreshes", grown, names)
	}
	// All due at once: they run (at most maxParallelRefreshes at a time),
	// each once.
	before := e.emu.Stats(emulator.Rakbank).Total
	e.clock.Advance(43 * time.Second)
	e.b.WaitBackground()
	if n := e.emu.Stats(emulator.Rakbank).Total - before; n != names {
		t.Fatalf("%d background refreshes, want %d", n, names)
	}
	e.b.Close()
	if n := e.b.Planned(); n != 0 {
		t.Fatalf("%d refreshes still planned after Close", n)
	}
}

// A read of a name whose config is gone removes its state.
func TestStateGoesWithTheConfig(t *testing.T) {
	e := newEnv(t)
	e.configure("rak")
	ctx := context.Background()
	if _, err := e.b.Get(ctx, e.st, "rak"); err != nil {
		t.Fatal(err)
	}
	e.st.mu.Lock()
	delete(e.st.configs, "rak")
	e.st.mu.Unlock()
	e.b.Forget("rak") // another node deleted it
	if _, err := e.b.Get(ctx, e.st, "rak"); err == nil {
		t.Fatal("read of a deleted config succeeded")
	}
	if n := e.b.Len(); n != 0 {
		t.Fatalf("state for %d names after the config went", n)
	}
}
