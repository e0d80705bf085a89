package bankauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

const secretTokenType = "bankauth_token"

func pathToken(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "token/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "bankauth",
			OperationSuffix: "token",
		},
		Fields: map[string]*framework.FieldSchema{
			// TypeString, not TypeNameString: the pattern above already admits
			// only valid names, and TypeNameString compiles a regexp on every
			// Get and Validate, which was most of the cost of a cached read.
			"name": {Type: framework.TypeString, Required: true, Description: "Name of the config whose token to return."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.tokenRead,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
			// A forced refresh calls the bank before it writes storage: run it
			// on the active node so a standby never repeats the bank call.
			logical.UpdateOperation: &framework.PathOperation{Callback: b.tokenRefresh,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: false,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "refresh"}},
		},
		HelpSynopsis:    pathTokenHelpSyn,
		HelpDescription: pathTokenHelpDesc,
	}}
}

// secretToken is the lease type of token reads. Leases are not renewable:
// a reader comes back when the lease ends and gets a new token. Revoking a
// lease does nothing, since many readers share one token.
func secretToken(b *backend) *framework.Secret {
	return &framework.Secret{
		Type: secretTokenType,
		Fields: map[string]*framework.FieldSchema{
			"access_token": {Type: framework.TypeString, Description: "Bank access token.", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
			"token_type":   {Type: framework.TypeString, Description: "Token type, usually bearer."},
			"expires_in":   {Type: framework.TypeInt, Description: "Seconds until the token expires."},
			"expires_at":   {Type: framework.TypeString, Description: "When the token expires, RFC 3339 UTC."},
			"scope":        {Type: framework.TypeString, Description: "Scope the bank granted."},
		},
		Revoke: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
			return nil, nil
		},
	}
}

func (b *backend) tokenRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	e := b.entryFor(name)
	if resp := b.cachedTokenResponse(name, e); resp != nil {
		return resp, nil
	}
	e.stats.cacheMisses.Add(1)
	tok, warning, err := b.obtain(ctx, req.Storage, name, e, false, time.Time{})
	if err != nil {
		return tokenError(name, err)
	}
	resp := b.tokenResponse(tok, leased(e.loaded.Load()))
	if warning != "" {
		e.stats.staleServed.Add(1)
		resp.AddWarning(fmt.Sprintf("config %s: %s", name, warning))
	}
	return resp, nil
}

func (b *backend) tokenRefresh(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	e := b.entryFor(name)
	e.touch(time.Now())
	tok, _, err := b.obtain(ctx, req.Storage, name, e, true, time.Now())
	if err != nil {
		return tokenError(name, err)
	}
	return b.tokenResponse(tok, leased(e.loaded.Load())), nil
}

// obtain returns a fresh token for name: the one in memory or storage if it
// is fresh (and no refresh is forced), else a new one from the bank, stored
// before it is handed out. Callers queue on the entry's lock, so concurrent
// readers of a stale token cause one bank request; those that waited find
// the new token when they get the lock.
//
// A forced refresh (since = when it was asked for) accepts a token obtained
// after since: a crowd of callers forcing at once after a bank 401 costs one
// bank request too.
//
// Serve-while-valid: when the bank fails (or is left alone after a recent
// failure, or the request budget is spent) and a read finds a token that is
// stale but not expired, that token is returned with a warning naming the
// failure. A forced refresh gets the error instead.
func (b *backend) obtain(ctx context.Context, s logical.Storage, name string, e *entry, force bool, since time.Time) (*engine.Token, string, error) {
	if tok, handled, err := b.obtainUncached(ctx, s, name, e); handled {
		return tok, "", err
	}
	if err := b.acquireOrServe(ctx, e, force); err != nil {
		var busy *busyError
		if errors.As(err, &busy) {
			return busy.tok, staleWarning(busy.tok, err, time.Now()), nil
		}
		return nil, "", err
	}
	defer e.release()

	tok := e.token.Load()
	if tok == nil {
		stored, err := b.readTokenChecked(ctx, s, name)
		if err != nil {
			return nil, "", err
		}
		tok = stored
		e.token.Store(tok)
	}
	// The config is loaded before a cached token is returned too: the hot
	// path needs it in memory (for its lease setting). A fresh token is
	// served even if the config cannot be read.
	lc, cfgErr := b.config(ctx, s, name, e)
	now := time.Now()
	if tok.FreshAt(now) && (!force || tok.ObtainedAt.After(since)) {
		if lc != nil && !e.scheduled.Load() {
			b.scheduleRefresh(name, e, tok, lc.cfg)
		}
		return tok, "", nil
	}
	if cfgErr != nil {
		return nil, "", cfgErr
	}
	var err error
	// A performance standby cannot store the new token; let Vault forward the
	// request to the active node before the bank is called, not after.
	if b.System().ReplicationState().HasState(consts.ReplicationPerformanceStandby) {
		return nil, "", logical.ErrReadOnly
	}
	// Shortly after a failure the bank is not asked again.
	if cause, retryAt, backing := e.health.backingOff(now); backing {
		err = &backoffError{cause: cause, retryAt: retryAt}
	} else {
		var next *engine.Token
		if next, err = b.renew(ctx, s, name, e, lc, tok); err == nil {
			return next, "", nil
		}
	}
	if !force && usableAt(tok, time.Now()) {
		// Logged once per failed fetch, not on every read during the backoff.
		var bo *backoffError
		if !errors.As(err, &bo) {
			b.Logger().Named(name).Warn("serving the cached token while the bank fails", "provider", lc.cfg.Provider,
				"expires_at", tok.ExpiresAt.UTC(), "error", err)
		}
		return tok, staleWarning(tok, err, time.Now()), nil
	}
	return nil, "", err
}

// renew fetches a new token from the bank (using prev's refresh token where
// the provider has a refresh grant), stores it, and only then hands it out
// and plans its background refresh: a token (and the rotated single-use
// refresh token that came with it) is in storage before anyone sees it.
// The caller holds the entry's lock.
func (b *backend) renew(ctx context.Context, s logical.Storage, name string, e *entry, lc *loadedConfig, prev *engine.Token) (*engine.Token, error) {
	next, err := lc.client.Fetch(ctx, prev)
	b.saveBudget(ctx, s, name, e)
	if err != nil {
		// A caller that gave up (its request cancelled) says nothing about the bank.
		if ctx.Err() == nil {
			e.health.failed(err, time.Now())
		}
		return nil, err
	}
	se, err := logical.StorageEntryJSON(tokenPrefix+name, next)
	if err == nil {
		err = s.Put(ctx, se)
	}
	if err != nil {
		// Not handed out unstored; back off as after a bank failure.
		e.health.failed(err, time.Now())
		return nil, err
	}
	e.health.reset()
	e.token.Store(next)
	b.scheduleRefresh(name, e, next, lc.cfg)
	return next, nil
}

// replan plans the background refresh of a fresh token whose earlier plan
// was dropped (it had gone unread for a while, and is read again).
func (b *backend) replan(name string, e *entry, tok *engine.Token) {
	if lc := e.loaded.Load(); lc != nil {
		b.scheduleRefresh(name, e, tok, lc.cfg)
	}
}

// leased reports whether token reads of a config carry a Vault lease (the
// config's lease field; on when the config is not known).
func leased(lc *loadedConfig) bool { return lc == nil || !lc.cfg.NoLease }

// tokenResponse is a token as readers see it. With lease, it has a
// non-renewable lease that ends when the token does; without, it is plain
// data and expires_in/expires_at alone carry the expiry.
func (b *backend) tokenResponse(tok *engine.Token, lease bool) *logical.Response {
	left := time.Until(tok.ExpiresAt).Truncate(time.Second)
	data := map[string]any{
		"access_token": tok.AccessToken,
		"token_type":   tok.TokenType,
		"expires_in":   int64(left / time.Second),
		"expires_at":   tok.ExpiresAt.UTC().Format(time.RFC3339),
		"scope":        tok.Scope,
	}
	if !lease {
		return &logical.Response{Data: data}
	}
	resp := b.Secret(secretTokenType).Response(data, nil)
	resp.Secret.TTL = left
	resp.Secret.MaxTTL = left
	resp.Secret.Renewable = false
	return resp
}

// tokenError maps a failure to what the reader sees: 400 for a missing
// config, 429 naming the config when its request budget is spent, 502
// naming the config and the bank's answer for an upstream failure.
func tokenError(name string, err error) (*logical.Response, error) {
	var noCfg errNoConfig
	var up *engine.UpstreamError
	var spent *engine.BudgetError
	switch {
	case errors.As(err, &noCfg):
		return logical.ErrorResponse(noCfg.Error()), nil
	case errors.As(err, &spent):
		return nil, logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf("config %s: %s", name, err))
	case errors.As(err, &up):
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("config %s: %s", name, err))
	}
	return nil, err
}

const pathTokenHelpSyn = `Read a valid bank access token; write to force a new one.`

const pathTokenHelpDesc = `
Reading token/<name> returns access_token, token_type, expires_in (seconds),
expires_at (RFC 3339 UTC) and scope, with a non-renewable lease whose TTL is
the token's remaining life (no lease when the config sets lease=false). The token is cached while at least a fifth of its
life is left; after that the next read gets a new one from the bank (by the
bank's refresh grant where it has one). Many readers of a stale token cause a
single bank request. Tokens that are read get renewed in the background
before they turn stale (see the config's background_refresh_idle).

If the bank fails while the cached token is stale but not expired, the read
returns that token with a warning naming the failure; only without a valid
token does it fail (502 naming the bank's answer, 429 when the config's
request budget is spent).

Writing token/<name> (vault write -f) forces a new token, e.g. after the bank
answered 401 to the current one.
`
