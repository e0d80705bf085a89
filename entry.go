package bankauth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/hashicorp/vault/sdk/logical"
)

// entry is the in-memory state of one config name. The hot path (a cached,
// fresh token) reads token without locking; everything that talks to the
// bank or writes storage holds lock, so one name makes one bank request at
// a time however many readers wait.
type entry struct {
	lock   chan struct{} // a mutex whose waiters can give up with their context
	loaded atomic.Pointer[loadedConfig]
	token  atomic.Pointer[engine.Token]
	stats  connStats // this node's counters, for status and metrics (observe.go)

	// Background refresh (refresh.go) and failure handling (failure.go).
	lastRead  atomic.Int64 // unix nanoseconds of the last read or forced refresh
	scheduled atomic.Bool  // a background refresh is planned (or off) for the current token
	timerMu   sync.Mutex
	timer     *time.Timer
	timerTok  *engine.Token
	health    fetchHealth
	budget    *engine.Budget // guarded by lock; outlives config changes
}

// loadedConfig is a config as read from storage, with its bank client.
type loadedConfig struct {
	cfg    *engine.Config
	client *engine.Client
}

func newEntry() *entry { return &entry{lock: make(chan struct{}, 1)} }

// acquire takes the entry's lock, or gives up when ctx ends.
func (e *entry) acquire(ctx context.Context) error {
	select {
	case e.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *entry) release() { <-e.lock }

// forget drops the cached config, client and token, the planned background
// refresh and the failure backoff.
func (e *entry) forget() {
	if lc := e.loaded.Swap(nil); lc != nil {
		lc.client.Close()
	}
	e.token.Store(nil)
	e.stopTimer()
	e.health.reset()
}

// errNoConfig is returned for a name that has no config.
type errNoConfig string

func (e errNoConfig) Error() string {
	return fmt.Sprintf("no config named %q (write bankauth/config/%s first)", string(e), string(e))
}

// readConfig reads a config from storage; nil if there is none.
func readConfig(ctx context.Context, s logical.Storage, name string) (*engine.Config, error) {
	se, err := s.Get(ctx, configPrefix+name)
	if err != nil || se == nil {
		return nil, err
	}
	var cfg engine.Config
	if err := se.DecodeJSON(&cfg); err != nil {
		return nil, fmt.Errorf("decoding config %q: %w", name, err)
	}
	return &cfg, nil
}

// readToken reads a stored token; nil if there is none.
func readToken(ctx context.Context, s logical.Storage, name string) (*engine.Token, error) {
	se, err := s.Get(ctx, tokenPrefix+name)
	if err != nil || se == nil {
		return nil, err
	}
	var tok engine.Token
	if err := se.DecodeJSON(&tok); err != nil {
		return nil, fmt.Errorf("decoding stored token of %q: %w", name, err)
	}
	return &tok, nil
}

// config returns the entry's config and client, loading them from storage
// on first use. The caller holds the entry's lock.
func (b *backend) config(ctx context.Context, s logical.Storage, name string, e *entry) (*loadedConfig, error) {
	if lc := e.loaded.Load(); lc != nil {
		return lc, nil
	}
	cfg, err := readConfig(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errNoConfig(name)
	}
	if err := attachProfile(ctx, s, cfg); err != nil {
		return nil, fmt.Errorf("stored config %q: %w", name, err)
	}
	egress, err := b.egressFor(ctx, s)
	if err != nil {
		return nil, err
	}
	client, err := engine.NewClient(cfg, b.Logger().Named(name).With("config", name), egress)
	if err != nil {
		return nil, fmt.Errorf("stored config %q is invalid: %w", name, err)
	}
	client.SetObserver(b.observerFor(cfg.Provider, e))
	if err := b.attachBudget(ctx, s, name, e, client); err != nil {
		return nil, err
	}
	lc := &loadedConfig{cfg: cfg, client: client}
	e.loaded.Store(lc)
	return lc, nil
}
