// Package bankauth is a Vault secrets engine that brokers short-lived access
// tokens from banks' OAuth-style token endpoints. Credentials live in
// bankauth/config/<name>; bankauth/token/<name> answers with a valid token,
// cached while it is good and fetched from the bank when it is not.
package bankauth

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Version is the plugin's version, reported to Vault as its RunningVersion.
// Release builds set it with -ldflags "-X ...bankauth.Version=v1.2.3".
var Version = "v0.1.0"

// Storage key prefixes.
const (
	configPrefix = "config/"
	tokenPrefix  = "token/"
)

// Factory returns a configured bankauth backend.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	// Background refreshes have no request, hence no req.Storage: they use
	// the mount's storage view.
	b.storage = conf.StorageView
	return b, nil
}

// backend is the bankauth secrets engine. Its in-memory state is a cache of
// what storage holds, one entry per config name.
type backend struct {
	*framework.Backend

	mu      sync.RWMutex
	entries map[string]*entry

	// profileLock orders profile writes and deletes (Lock) against config
	// writes (RLock), so no config is stored naming a profile being deleted.
	// It is taken before any entry lock.
	profileLock sync.RWMutex
	storage     logical.Storage // the mount's storage view, for background refresh
	refresher   *refresher

	egress  egressState // the mount's egress policy (egress.go)
	metrics *metrics    // this mount's Prometheus metrics (metrics.go)
	started time.Time   // when this backend was built: status counters count from here
}

func newBackend() *backend {
	b := &backend{entries: map[string]*entry{}, refresher: newRefresher(), started: time.Now()}
	b.metrics = newMetrics(b)
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			// Tokens are per cluster: a performance secondary fetches its own
			// rather than writing into replicated storage.
			LocalStorage:    []string{tokenPrefix, budgetPrefix},
			SealWrapStorage: []string{configPrefix, tokenPrefix, profilePrefix},
			// Answers only when the mount's settings allow it (path_metrics.go).
			Unauthenticated: []string{publicMetricsPath},
		},
		Paths: framework.PathAppend(
			pathConfig(b),
			pathToken(b),
			pathProfile(b),
			pathStatus(b),
			pathMetrics(b),
			pathSettings(b),
		),
		Secrets:        []*framework.Secret{secretToken(b)},
		Invalidate:     b.invalidate,
		Clean:          b.clean,
		RunningVersion: Version,
	}
	return b
}

// HandleRequest answers reads of cached tokens directly (fastpath.go), and
// accepts oauth_metadata as a JSON object as well as a JSON string: the
// framework has no field type for "any JSON", so an object sent through the
// API is re-encoded to the string form the schema declares.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if resp := b.fastTokenRead(req); resp != nil { // a cached token: see fastpath.go
		return resp, nil
	}
	if v, ok := req.Data[fieldOAuthMetadata]; ok && strings.HasPrefix(req.Path, configPrefix) {
		if _, isString := v.(string); !isString && v != nil {
			if enc, err := json.Marshal(v); err == nil {
				req.Data[fieldOAuthMetadata] = string(enc)
			}
		}
	}
	if v, ok := req.Data[fieldProfile]; ok && strings.HasPrefix(req.Path, profilePrefix) {
		if _, isString := v.(string); !isString && v != nil {
			if enc, err := json.Marshal(v); err == nil {
				req.Data[fieldProfile] = string(enc)
			}
		}
	}
	if resp := badConfigInput(req); resp != nil {
		return resp, nil
	}
	return b.Backend.HandleRequest(ctx, req)
}

// entryFor returns the in-memory entry for a config name, creating it.
func (b *backend) entryFor(name string) *entry {
	b.mu.RLock()
	e := b.entries[name]
	b.mu.RUnlock()
	if e != nil {
		return e
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e = b.entries[name]; e == nil {
		e = newEntry()
		b.entries[name] = e
	}
	return e
}

// invalidate drops cached state when another node changes storage (HA
// standbys, replication).
func (b *backend) invalidate(ctx context.Context, key string) {
	switch {
	case strings.HasPrefix(key, configPrefix):
		b.entryFor(strings.TrimPrefix(key, configPrefix)).forget()
	case strings.HasPrefix(key, profilePrefix):
		b.forgetAll()
	case strings.HasPrefix(key, tokenPrefix):
		b.entryFor(strings.TrimPrefix(key, tokenPrefix)).token.Store(nil)
	case key == settingsKey:
		b.reloadEgress(ctx)
	}
}

// clean stops background refreshes and closes idle bank connections when
// the mount is unloaded.
func (b *backend) clean(context.Context) {
	b.refresher.stop()
	b.mu.Lock()
	for _, e := range b.entries {
		e.forget()
	}
	b.mu.Unlock()
	b.refresher.wait()
}

const backendHelp = `
The bankauth secrets engine brokers short-lived access tokens from bank token
endpoints (İşbank, eTranzact, RAKBANK, Acceleration Cloud, any RFC 6749
client credentials endpoint, and banks operators describe in profile/<name>).

Write a connection's credentials to config/<name> once; they are never shown
again. Read token/<name> to get a valid access token: it is cached while it
has enough life left and fetched from the bank when it has not, with a
non-renewable lease that ends when the token does.
`
