package bankauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// token/<config>/<id>: a consent's access token. Package broker owns its
// lifecycle (cached in memory, one renewal for any crowd of readers,
// background refresh through the one scheduler); this file answers reads
// and runs the refresh grant with rotation for it: everything that changes
// a consent holds its lock, the new refresh token is stored before the new
// access token is handed out, and a refresh token is never sent twice.

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

// consentToken answers the consent's token from package broker, which
// owns its lifecycle (consent_source.go is its view of storage and bank).
func (b *backend) consentToken(ctx context.Context, req *logical.Request, config, id string, force bool) (*logical.Response, error) {
	b.consentsInUse()
	src := consentSource{b, req.Storage}
	var res broker.Result
	var err error
	if force {
		res, err = b.broker.RefreshConsent(ctx, src, config, id)
	} else {
		res, err = b.broker.ConsentToken(ctx, src, config, id)
	}
	if err != nil {
		return consentTokenError(config, id, err)
	}
	resp := b.tokenResponse(res.Token, res.Lease)
	if res.Warning != "" {
		resp.AddWarning(fmt.Sprintf("consent %s/%s: %s", config, id, res.Warning))
	}
	return resp, nil
}

// cachedConsentResponse is the answer from memory for a consent's fresh
// token; nil when there is none (fastpath.go).
func (b *backend) cachedConsentResponse(config, id string) *logical.Response {
	res, ok := b.broker.CachedConsent(config, id)
	if !ok {
		return nil
	}
	return b.tokenResponse(res.Token, res.Lease)
}

// ConsentAccessToken returns the consent's current access token (renewed
// if it was stale), for a DPoP proof bound to it (ath). Errors are those of
// consentTokenError's input: check with it to answer.
func (b *backend) ConsentAccessToken(ctx context.Context, s logical.Storage, config, id string) (string, error) {
	return b.broker.ConsentAccessToken(ctx, consentSource{b, s}, config, id)
}

// consentTokenError is the answer to a failed consent token read.
func consentTokenError(config, id string, err error) (*logical.Response, error) {
	var re *broker.ReauthError
	var nc broker.NoConsentError
	var ncf broker.NoConfigError
	var bo *broker.BackoffError
	switch {
	case errors.As(err, &re), errors.As(err, &nc):
		return logical.ErrorResponse("%s", err), nil
	case errors.As(err, &ncf):
		return logical.ErrorResponse("no config %s", config), nil
	case errors.Is(err, broker.ErrReadOnly):
		return nil, logical.ErrReadOnly // the active node refreshes: Vault forwards the request there
	case errors.As(err, &bo):
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("consent %s/%s: %s", config, id, err))
	}
	return upstreamError(config, id, err)
}

// consentTokenFresh reports whether a token has at least a fifth of its
// life left at now.
func consentTokenFresh(t *fapi.Token, now time.Time) bool {
	life := t.ExpiresAt.Sub(t.IssuedAt)
	return now.Before(t.ExpiresAt.Add(-life / 5))
}

// refreshConsent runs the refresh grant for a consent whose lock the
// caller holds, and stores the outcome. The new refresh token (or the old
// one, when the bank rotates none) is stored before the new access token is
// returned. The bank's invalid_grant makes the consent revoked (a
// *broker.ReauthError); an answer that never came leaves the refresh
// token's fate unknown, so it is not sent again either. Any other error
// leaves the stored token serving.
func (b *backend) refreshConsent(ctx context.Context, s logical.Storage, config, id string, rec *consentRecord) (*fapi.Token, error) {
	old := rec.Token
	if old.RefreshToken == "" {
		if consentTokenFresh(old, b.clock.Now()) {
			return old, nil
		}
		rec.State, rec.Token, rec.LastError = consentRevoked, nil, "the bank gave no refresh token, and the access token has expired"
		if err := putConsent(ctx, s, config, id, rec); err != nil {
			return nil, err
		}
		return nil, reauthError(config, id, rec)
	}
	key := consentKey(config, id)
	if b.sentRefresh.spent(key, old.RefreshToken) {
		rec.State, rec.Token = consentRevoked, nil
		rec.LastError = "the refresh token was sent to the bank before, and what the bank answered could not be stored"
		if err := putConsent(ctx, s, config, id, rec); err != nil {
			return nil, err
		}
		b.sentRefresh.forget(key)
		return nil, reauthError(config, id, rec)
	}
	cc, resp, err := b.consentClientFor(ctx, s, config)
	if err != nil {
		return nil, err
	}
	if resp != nil {
		return nil, &broker.ReauthError{Config: config, ID: id, Reason: resp.Error().Error()}
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
			return nil, &broker.StoreError{Err: perr}
		}
		b.sentRefresh.forget(key)
		b.Logger().Warn("consent refresh failed", "config", config, "consent", id, "error", err.Error(), "state", rec.State)
		if rec.Token == nil {
			return nil, reauthError(config, id, rec)
		}
		return nil, err
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
		return nil, &broker.StoreError{Err: err}
	}
	b.sentRefresh.forget(key)
	b.Logger().Debug("consent token refreshed", "config", config, "consent", id,
		"expires_at", tok.ExpiresAt.UTC().Format(time.RFC3339), "rotated", tok.RefreshToken != old.RefreshToken)
	return tok, nil
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

// reauthError is the error of a consent without a usable token.
func reauthError(config, id string, rec *consentRecord) *broker.ReauthError {
	why := rec.LastError
	if why == "" {
		why = "state " + rec.State
	}
	return &broker.ReauthError{Config: config, ID: id, Reason: why}
}

const pathConsentTokenHelpSyn = `Read a consent's access token; write to force a refresh.`

const pathConsentTokenHelpDesc = `
Reading token/<config>/<id> returns the consent's access_token, token_type
(DPoP when the config has a dpop_key, else Bearer), expires_in, expires_at
and scope, with a non-renewable lease of the token's remaining life (none
with lease=false). The token is cached in memory while it has at least a
fifth of its life left, and renewed in the background while it is read
within the config's background_refresh_idle; a stale one is renewed with the
refresh grant by the next read. A bank that rotates refresh tokens gets the
old one never again: the new one is stored before the new access token is
handed out, and readers of a stale token wait for the one refresh.

A refresh the bank answers invalid_grant (the user withdrew consent, or it
expired) makes the consent revoked: reads answer 400 "consent <config>/<id>
needs re-authorization" and the bank hears nothing more of it until a new
consent write and callback succeed.

Writing token/<config>/<id> (vault write -f) forces a refresh.
`
