// Package bankauth is a Vault secrets engine that brokers short-lived access
// tokens from banks' OAuth-style token endpoints. Credentials live in
// bankauth/config/<name>; bankauth/token/<name> answers with a valid token,
// cached while it is good and fetched from the bank when it is not.
//
// This package is the Vault glue: the paths, one storage adapter
// (storage.go), the fast path and the metrics rendering. When to talk to
// the bank is decided by package broker, how by package bank.
package bankauth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/jonboulle/clockwork"
)

// Version is the plugin's version, reported to Vault as its RunningVersion.
// Release builds set it with -ldflags "-X ...bankauth.Version=v1.2.3".
var Version = "v0.1.0"

// Factory returns a configured bankauth backend.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	return factoryWithClock(ctx, conf, clockwork.NewRealClock())
}

// factoryWithClock is Factory on the given clock (tests pass a fake one).
func factoryWithClock(ctx context.Context, conf *logical.BackendConfig, clock clockwork.Clock) (*backend, error) {
	b := newBackend(clock)
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	// Background refreshes and metrics scrapes have no request, hence no
	// req.Storage: they use the mount's storage view.
	b.storage = conf.StorageView
	b.broker = broker.New(broker.Options{
		Clock:        clock,
		Logger:       b.Logger(),
		Store:        store{b, b.storage},
		ReadOnly:     b.storageReadOnly,
		RefreshLag:   b.observeRefreshLag,
		Panicked:     b.metrics.panics.Inc,
		Consents:     consentSource{b, b.storage},
		AttemptSweep: attemptSweepEvery,
	})
	b.planCensus() // consent_census.go: its first walk is minutes away, not at mount
	return b, nil
}

// backend is the bankauth secrets engine. Every connection's token
// lifecycle belongs to broker.
type backend struct {
	*framework.Backend

	broker  *broker.Broker
	clock   clockwork.Clock
	storage logical.Storage // the mount's storage view, for work outside a request (metrics)

	// profileLock orders profile writes and deletes (Lock) against config
	// writes (RLock), so no config is stored naming a profile being deleted.
	profileLock sync.RWMutex

	keys         keyState          // signing keys' locks and clock (key_store.go)
	jwks         jwksCache         // public keys' JWK Sets, rendered ahead (jwks_cache.go)
	egress       egressState       // the mount's egress policy (egress.go)
	metrics      *metrics          // this mount's Prometheus metrics (metrics.go)
	consents     consentLocks      // per-consent locks (consent_store.go)
	consentIndex consentIndexLocks // per-config locks of the consent index (consent_index.go)
	dpopNonces   sync.Map          // config name -> its authorization server's latest DPoP nonce
	sentRefresh  sentRefresh       // refresh tokens spent but not yet stored over (path_consent_token.go)
	consentStats consentStats      // consent refresh failures by config and reason (consent_counters.go)
	census       census            // consents per state per config, counted in the background (consent_census.go)
	attemptSweep sync.Once         // plans the first sweep of the consent attempt index (consent_attempts.go)
	routes       routes            // each path's pattern, for checks before the framework's (request_input.go)
	started      time.Time         // when this backend was built: status counters count from here
}

func newBackend(clock clockwork.Clock) *backend {
	b := &backend{clock: clock, started: clock.Now()}
	b.metrics = newMetrics(b)
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			// Tokens are per cluster: a performance secondary fetches its own
			// rather than writing into replicated storage.
			LocalStorage:    []string{tokenPrefix, budgetPrefix},
			SealWrapStorage: []string{configPrefix, tokenPrefix, keyPrefix, profilePrefix, consentPrefix},
			// Answers only when the mount's settings allow it (path_metrics.go),
			// and each key only with public_jwks=true (path_jwks.go).
			Unauthenticated: []string{publicMetricsPath, publicJWKSPaths},
		},
		Paths: framework.PathAppend(
			pathConfig(b),
			pathToken(b),
			pathProfile(b),
			pathStatus(b),
			pathMetrics(b),
			pathSettings(b),
			pathKey(b), pathSign(b), pathJWKS(b), pathDPoP(b),
			pathConsent(b), pathConsentCallback(b), pathConsentToken(b),
		),
		Secrets:        []*framework.Secret{secretToken(b)},
		InitializeFunc: b.initialize, // key_migrate.go
		Invalidate:     b.invalidate,
		Clean:          b.clean,
		RunningVersion: Version,
	}
	b.routes = newRoutes(b.Backend.Paths)
	return b
}

// HandleRequest answers reads of cached tokens directly (fastpath.go);
// every other request has its input checked first (request_input.go), and
// a handler's panic or echo of a secret is caught (request_guard.go).
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (resp *logical.Response, err error) {
	defer b.recoverPanic("request", &err)
	if resp := b.fastTokenRead(req); resp != nil { // a cached token: see fastpath.go
		return resp, nil
	}
	p, captures := b.routes.match(req.Path)
	if p == nil {
		return b.Backend.HandleRequest(ctx, req) // the framework's answer for no such path
	}
	if resp := checkInput(req, p, captures); resp != nil {
		return resp, nil
	}
	resp, err = b.Backend.HandleRequest(ctx, req)
	if err == nil && notFound(req, resp) {
		return notFoundResponse(req.Path), nil
	}
	return redactEchoes(p, req.Data, resp, err)
}

// notFoundResponse is a 404 whose errors say what was not found, in the
// form Vault gives its own errors ({"errors":["..."]}). A coded error would
// reach the caller wrapped as "1 error occurred: ...".
func notFoundResponse(path string) *logical.Response {
	body, _ := json.Marshal(map[string][]string{"errors": {path + ": not found"}})
	return &logical.Response{Data: map[string]any{
		logical.HTTPStatusCode:  http.StatusNotFound,
		logical.HTTPContentType: "application/json",
		logical.HTTPRawBody:     string(body),
	}}
}

// notFound reports whether resp is a read that found nothing or a list of
// no keys: Vault would answer those 404 with no message at all, which tells
// a caller nothing; the plugin answers 404 saying what was not found.
func notFound(req *logical.Request, resp *logical.Response) bool {
	switch req.Operation {
	case logical.ReadOperation:
		return resp == nil
	case logical.ListOperation:
		if resp == nil {
			return true
		}
		keys, _ := resp.Data["keys"].([]string)
		return len(keys) == 0 && len(resp.Data) <= 1 && len(resp.Warnings) == 0
	}
	return false
}

// HandleExistenceCheck tells Vault whether a write creates or updates, from
// the names in the path alone. The framework's own check parses the whole
// request body first, and its errors quote the value they could not parse
// (Vault logs them and writes them to the audit log); here the body is left
// for HandleRequest, which refuses bad input with a 400 naming the field. A
// name that breaks the naming rule touches no storage: the write is taken as
// a create, and HandleRequest refuses it.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (checkFound, exists bool, err error) {
	defer b.recoverPanic("existence check", &err)
	p, captures := b.routes.match(req.Path)
	if p == nil || p.ExistenceCheck == nil ||
		(req.Operation != logical.CreateOperation && req.Operation != logical.UpdateOperation) {
		return b.Backend.HandleExistenceCheck(ctx, req)
	}
	if nameProblem(captures, false) != "" {
		return true, false, nil
	}
	raw := make(map[string]any, len(captures))
	for k, v := range captures {
		raw[k] = v
	}
	exists, err = p.ExistenceCheck(ctx, req, &framework.FieldData{Raw: raw, Schema: p.Fields})
	return true, exists, err
}

// invalidate drops cached state when another node changes storage (HA
// standbys, replication).
func (b *backend) invalidate(ctx context.Context, key string) {
	switch {
	case strings.HasPrefix(key, configPrefix):
		b.broker.Forget(strings.TrimPrefix(key, configPrefix))
	case strings.HasPrefix(key, profilePrefix):
		b.broker.ForgetAll()
	case strings.HasPrefix(key, keyPrefix): // configs using the key sign with its new version
		b.broker.ForgetAll()
		b.jwks.reload(ctx, b.storage, strings.TrimPrefix(key, keyPrefix))
	case strings.HasPrefix(key, consentPrefix):
		if config, id, ok := strings.Cut(strings.TrimPrefix(key, consentPrefix), "/"); ok {
			b.broker.ForgetConsent(config, id)
		}
	case strings.HasPrefix(key, tokenPrefix):
		b.broker.Forget(strings.TrimPrefix(key, tokenPrefix))
	case key == settingsKey:
		b.reloadEgress(ctx)
	}
}

// clean stops background refreshes and closes idle bank connections when
// the mount is unloaded.
func (b *backend) clean(context.Context) {
	if b.broker != nil {
		b.broker.Close()
	}
}

// storageReadOnly reports whether this node must not write storage (a
// performance standby or a DR secondary): it then never fetches a token;
// the active node does.
func (b *backend) storageReadOnly() bool {
	return b.System().ReplicationState().HasState(consts.ReplicationPerformanceStandby | consts.ReplicationDRSecondary)
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
