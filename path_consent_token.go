package bankauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// token/<config>/<id>: a consent's access token, cached in storage with the
// consent while it has at least a fifth of its life left, renewed by the
// refresh grant with rotation when it has not. Everything that changes a
// consent holds its lock, so one node never sends two refresh grants for
// one consent at once and a crowd of readers costs one refresh; the new
// refresh token is stored before the new access token is handed out, and a
// refresh token is never sent twice.

func pathConsentToken(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern:      "token/" + consentNamePattern,
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "bankauth", OperationSuffix: "consent-token"},
		Fields:       consentNameFields(),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.consentTokenRead,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
			// A forced refresh calls the bank before it writes storage.
			logical.UpdateOperation: &framework.PathOperation{Callback: b.consentTokenRefresh, ForwardPerformanceStandby: true,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "refresh"}},
		},
		HelpSynopsis:    pathConsentTokenHelpSyn,
		HelpDescription: pathConsentTokenHelpDesc,
	}}
}

func (b *backend) consentTokenRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.consentToken(ctx, req, d.Get("config").(string), d.Get("id").(string), false)
}

func (b *backend) consentTokenRefresh(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.consentToken(ctx, req, d.Get("config").(string), d.Get("id").(string), true)
}

// consentToken answers the consent's token, refreshing it first when it is
// stale or force is set.
func (b *backend) consentToken(ctx context.Context, req *logical.Request, config, id string, force bool) (*logical.Response, error) {
	defer b.consents.lock(config, id)()
	rec, err := readConsent(ctx, req.Storage, config, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return logical.ErrorResponse("consent %s/%s does not exist: write consent/%s/%s to start an authorization", config, id, config, id), nil
	}
	if rec.State != consentAuthorized || rec.Token == nil {
		return reauthorization(config, id, rec), nil
	}
	cfg, err := readStoredConfig(ctx, req.Storage, config)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return logical.ErrorResponse("no config %s", config), nil
	}
	now := b.clock.Now()
	if !force && consentTokenFresh(rec.Token, now) {
		return b.consentTokenResponse(rec.Token, !cfg.NoLease), nil
	}
	if b.storageReadOnly() { // the active node refreshes: Vault forwards the request there
		return nil, logical.ErrReadOnly
	}
	return b.refreshConsent(ctx, req.Storage, config, id, rec, !cfg.NoLease)
}

// consentTokenFresh reports whether a token has at least a fifth of its
// life left at now.
func consentTokenFresh(t *fapi.Token, now time.Time) bool {
	life := t.ExpiresAt.Sub(t.IssuedAt)
	return now.Before(t.ExpiresAt.Add(-life / 5))
}

// refreshConsent runs the refresh grant for a consent whose lock the
// caller holds. The new refresh token (or the old one, when the bank
// rotates none) is stored before the new access token is answered. The
// bank's invalid_grant makes the consent revoked; an answer that never
// came leaves the refresh token's fate unknown, so it is not sent again
// either.
func (b *backend) refreshConsent(ctx context.Context, s logical.Storage, config, id string, rec *consentRecord, lease bool) (*logical.Response, error) {
	old := rec.Token
	if old.RefreshToken == "" {
		if consentTokenFresh(old, b.clock.Now()) {
			return b.consentTokenResponse(old, lease), nil
		}
		rec.State, rec.Token, rec.LastError = consentRevoked, nil, "the bank gave no refresh token, and the access token has expired"
		if err := putConsent(ctx, s, config, id, rec); err != nil {
			return nil, err
		}
		return reauthorization(config, id, rec), nil
	}
	key := consentKey(config, id)
	if b.sentRefresh.spent(key, old.RefreshToken) {
		rec.State, rec.Token = consentRevoked, nil
		rec.LastError = "the refresh token was sent to the bank before, and what the bank answered could not be stored"
		if err := putConsent(ctx, s, config, id, rec); err != nil {
			return nil, err
		}
		b.sentRefresh.forget(key)
		return reauthorization(config, id, rec), nil
	}
	cc, resp, err := b.consentClientFor(ctx, s, config)
	if resp != nil || err != nil {
		return resp, err
	}
	defer b.closeConsentClient(config, cc)
	tok, err := cc.fc.Refresh(ctx, old.RefreshToken, "")
	now := b.clock.Now()
	if err != nil {
		rec.LastError = err.Error()
		if refreshTokenSpent(err) {
			b.sentRefresh.mark(key, old.RefreshToken) // until the outcome is stored
			rec.State, rec.Token = consentRevoked, nil
			if !rec.ConsentExpiresAt.IsZero() && !now.Before(rec.ConsentExpiresAt) {
				rec.State = consentExpired
			}
		}
		if perr := putConsent(ctx, s, config, id, rec); perr != nil {
			return nil, perr
		}
		b.sentRefresh.forget(key)
		b.Logger().Warn("consent refresh failed", "config", config, "consent", id, "error", err.Error(), "state", rec.State)
		if rec.Token == nil {
			return reauthorization(config, id, rec), nil
		}
		if now.Before(old.ExpiresAt) { // still valid: serve it, saying why it was not renewed
			resp := b.consentTokenResponse(old, lease)
			resp.AddWarning(fmt.Sprintf("consent %s/%s: the token could not be refreshed: %s", config, id, err))
			return resp, nil
		}
		return upstreamError(config, id, err)
	}
	fillExpiry(tok)
	tok.IDToken = "" // not validated on a refresh, and not needed
	if tok.RefreshToken == "" {
		tok.RefreshToken = old.RefreshToken
	}
	if tok.RefreshTokenExpiresAt.IsZero() {
		tok.RefreshTokenExpiresAt = old.RefreshTokenExpiresAt
	}
	if len(tok.AuthorizationDetails) == 0 {
		tok.AuthorizationDetails = old.AuthorizationDetails
	}
	rec.Token, rec.Scope, rec.LastRefreshAt, rec.LastError = tok, tok.Scope, now, ""
	if rec.Scope == "" {
		rec.Scope = old.Scope
		tok.Scope = old.Scope
	}
	if !tok.RefreshTokenExpiresAt.IsZero() {
		rec.ConsentExpiresAt = tok.RefreshTokenExpiresAt
	}
	if tok.RefreshToken != old.RefreshToken {
		b.sentRefresh.mark(key, old.RefreshToken) // rotated: the old one is spent until the new one is stored
	}
	if err := putConsent(ctx, s, config, id, rec); err != nil {
		return nil, err
	}
	b.sentRefresh.forget(key)
	b.Logger().Debug("consent token refreshed", "config", config, "consent", id,
		"expires_at", tok.ExpiresAt.UTC().Format(time.RFC3339), "rotated", tok.RefreshToken != old.RefreshToken)
	return b.consentTokenResponse(tok, lease), nil
}

// refreshTokenSpent reports whether a failed refresh leaves the refresh
// token unusable: the bank's invalid_grant; a request sent that got no
// answer (the bank may have used the token, and a bank with reuse
// detection revokes the whole grant when it sees it again); or a success
// status whose answer could not be read (the bank rotated it). A request
// refused by the egress policy, or that failed before it was sent, left
// the token as it was, and so did one whose connection could not be made.
func refreshTokenSpent(err error) bool {
	if fapi.IsInvalidGrant(err) {
		return true
	}
	var fe *fapi.Error
	if !errors.As(err, &fe) {
		return false
	}
	if fe.Status >= 200 && fe.Status <= 299 {
		return true
	}
	var ee *bank.EgressError
	var oe *net.OpError
	notSent := errors.As(err, &ee) || errors.Is(err, context.Canceled) || (errors.As(err, &oe) && oe.Op == "dial")
	return fe.Status == 0 && fe.Unwrap() != nil && !notSent
}

// sentRefresh remembers, per consent, a refresh token that was sent and
// spent (rotated, or with an unknown outcome) while the consent that still
// holds it has not been stored since: should that store fail, the token is
// never sent again from this node. Entries live only between a refresh and
// its store, or after a failed store.
type sentRefresh struct{ m sync.Map }

func refreshHash(rt string) [32]byte { return sha256.Sum256([]byte(rt)) }

func (s *sentRefresh) mark(key, rt string) { s.m.Store(key, refreshHash(rt)) }

func (s *sentRefresh) forget(key string) { s.m.Delete(key) }

func (s *sentRefresh) spent(key, rt string) bool {
	h, ok := s.m.Load(key)
	return ok && h.([32]byte) == refreshHash(rt)
}

// reauthorization is the 400 for a consent without a usable token.
func reauthorization(config, id string, rec *consentRecord) *logical.Response {
	why := rec.LastError
	if why == "" {
		why = "state " + rec.State
	}
	return logical.ErrorResponse("consent %s/%s needs re-authorization: %s", config, id, why)
}

// consentTokenResponse is a consent's token as readers see it, with a
// non-renewable lease of its remaining life (as token/<name>'s).
func (b *backend) consentTokenResponse(t *fapi.Token, lease bool) *logical.Response {
	return b.tokenResponse(bank.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, ExpiresAt: t.ExpiresAt, Scope: t.Scope}, lease)
}

const pathConsentTokenHelpSyn = `Read a consent's access token; write to force a refresh.`

const pathConsentTokenHelpDesc = `
Reading token/<config>/<id> returns the consent's access_token, token_type
(DPoP when the config has a dpop_key, else Bearer), expires_in, expires_at
and scope, with a non-renewable lease of the token's remaining life (none
with lease=false). The token is cached with the consent while it has at least
a fifth of its life left; then the next read renews it with the refresh
grant. A bank that rotates refresh tokens gets the old one never again: the
new one is stored before the new access token is handed out, and readers of
a stale token wait for the one refresh.

A refresh the bank answers invalid_grant (the user withdrew consent, or it
expired) makes the consent revoked: reads answer 400 "consent <config>/<id>
needs re-authorization" and the bank hears nothing more of it until a new
consent write and callback succeed.

Writing token/<config>/<id> (vault write -f) forces a refresh.
`
