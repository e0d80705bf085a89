package bankauth

import (
	"context"
	"errors"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// consent/<config>/<id>/callback: the authorization response the app
// received at its redirect URI. It is checked against the pending attempt
// (state in constant time, RFC 9207 iss, expiry), the code is exchanged
// (PKCE verifier, client authentication, DPoP), the ID token validated
// with openid, and the tokens stored. The attempt is consumed by its first
// callback, success or not.

// Fields of a callback.
const (
	fieldCallbackURL      = "callback_url"
	fieldCode             = "code"
	fieldCallbackState    = "state"
	fieldIss              = "iss"
	fieldError            = "error"
	fieldErrorDescription = "error_description"
)

func pathConsentCallback(b *backend) []*framework.Path {
	fields := consentNameFields()
	secret := &framework.DisplayAttributes{Sensitive: true}
	fields[fieldCallbackURL] = &framework.FieldSchema{Type: framework.TypeString, DisplayAttrs: secret,
		Description: "The redirect URL the app received, query included (or give code, state and iss, or error)."}
	fields[fieldCode] = &framework.FieldSchema{Type: framework.TypeString, DisplayAttrs: secret,
		Description: "The authorization code, when callback_url is not given."}
	fields[fieldCallbackState] = &framework.FieldSchema{Type: framework.TypeString, DisplayAttrs: secret,
		Description: "The state parameter of the response, when callback_url is not given."}
	fields[fieldIss] = &framework.FieldSchema{Type: framework.TypeString,
		Description: "The iss parameter of the response (RFC 9207), when callback_url is not given."}
	fields[fieldError] = &framework.FieldSchema{Type: framework.TypeString,
		Description: "The error parameter of an error response (e.g. access_denied), when callback_url is not given."}
	fields[fieldErrorDescription] = &framework.FieldSchema{Type: framework.TypeString,
		Description: "The error_description parameter of an error response."}
	return []*framework.Path{{
		Pattern:      "consent/" + consentNamePattern + "/callback$",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "bankauth", OperationSuffix: "consent-callback"},
		Fields:       fields,
		Operations: map[logical.Operation]framework.OperationHandler{
			// The code exchange talks to the bank before storage is written.
			logical.UpdateOperation: &framework.PathOperation{Callback: b.consentCallback, ForwardPerformanceStandby: true,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "complete"}},
		},
		HelpSynopsis:    pathConsentCallbackHelpSyn,
		HelpDescription: pathConsentCallbackHelpDesc,
	}}
}

// callbackParams reads the response's parameters from callback_url or the
// separate fields; a 400 names the field.
func callbackParams(d *framework.FieldData) (fapi.CallbackParams, *logical.Response) {
	str := func(f string) string { return d.Get(f).(string) }
	separate := str(fieldCode) != "" || str(fieldCallbackState) != "" || str(fieldIss) != "" || str(fieldError) != ""
	if raw := str(fieldCallbackURL); raw != "" {
		if separate {
			return fapi.CallbackParams{}, logical.ErrorResponse("invalid %s: give callback_url or code, state, iss and error, not both", fieldCallbackURL)
		}
		p, err := fapi.ParseCallbackURL(raw)
		if err != nil {
			var ce *fapi.CallbackError
			if errors.As(err, &ce) {
				return p, logical.ErrorResponse("invalid %s: %s", fieldCallbackURL, ce.Msg)
			}
			return p, logical.ErrorResponse("invalid %s: not a redirect URL with code or error", fieldCallbackURL)
		}
		return p, nil
	}
	p := fapi.CallbackParams{Code: str(fieldCode), State: str(fieldCallbackState), Iss: str(fieldIss),
		Error: str(fieldError), ErrorDescription: str(fieldErrorDescription)}
	if p.Code == "" && p.Error == "" {
		return p, logical.ErrorResponse("invalid %s: give the redirect URL the app received (or code and state, or error)", fieldCallbackURL)
	}
	return p, nil
}

func (b *backend) consentCallback(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.consentsInUse()
	config, id := d.Get("config").(string), d.Get("id").(string)
	p, resp := callbackParams(d)
	if resp != nil {
		return resp, nil
	}
	defer b.consents.lock(config, id)()
	defer b.broker.ForgetConsent(config, id) // the tokens change: before the lock is released
	rec, err := readConsent(ctx, req.Storage, config, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return logical.ErrorResponse("consent %s/%s does not exist: write consent/%s/%s to start an authorization", config, id, config, id), nil
	}
	if rec.Attempt == nil {
		return logical.ErrorResponse("consent %s/%s has no authorization attempt awaiting a callback (each attempt takes one): write consent/%s/%s to start a new one", config, id, config, id), nil
	}
	cc, resp, err := b.consentClientFor(ctx, req.Storage, config)
	if resp != nil || err != nil {
		return resp, err
	}
	defer b.closeConsentClient(config, cc)
	// The attempt is consumed before anything else: stored without it, so
	// no second callback (here or on another node) can use its code.
	attempt := rec.Attempt
	rec.Attempt = nil
	now := b.clock.Now()
	issuer := cc.cfg.Settings[bank.FieldIssuer]
	code, cerr := attempt.CheckCallback(p, issuer, fapi.RequireIss(cc.meta, cc.fapi2), now)
	var denial *fapi.Denial
	switch {
	case errors.As(cerr, &denial):
		rec.LastError = cerr.Error()
		if rec.State != consentAuthorized {
			rec.State = consentDenied
		}
		if err := putConsent(ctx, req.Storage, config, id, rec); err != nil {
			return nil, err
		}
		return &logical.Response{Data: rec.consentData(now)}, nil
	case cerr != nil:
		rec.LastError = cerr.Error()
		var ce *fapi.CallbackError
		if errors.As(cerr, &ce) && ce.Check == fapi.CheckExpired && rec.State == consentPending {
			rec.State = consentExpired
		}
		if err := putConsent(ctx, req.Storage, config, id, rec); err != nil {
			return nil, err
		}
		return logical.ErrorResponse("consent %s/%s: %s (the attempt is consumed: write consent/%s/%s to start a new one)", config, id, cerr, config, id), nil
	}
	if err := putConsent(ctx, req.Storage, config, id, rec); err != nil {
		return nil, err
	}
	tok, err := b.exchange(ctx, cc, attempt, code)
	if err != nil {
		rec.LastError = err.Error()
		if perr := putConsent(ctx, req.Storage, config, id, rec); perr != nil {
			return nil, perr
		}
		return upstreamError(config, id, err)
	}
	rec.State, rec.LastError = consentAuthorized, ""
	rec.Sub = tok.sub
	rec.Token = tok.Token
	rec.Scope = tok.Scope
	rec.AuthorizationDetails = tok.AuthorizationDetails
	rec.AuthorizedAt = now
	rec.ConsentExpiresAt = tok.RefreshTokenExpiresAt
	rec.LastRefreshAt = time.Time{}
	if err := putConsent(ctx, req.Storage, config, id, rec); err != nil {
		return nil, err
	}
	b.Logger().Info("consent authorized", "config", config, "consent", id)
	return &logical.Response{Data: rec.consentData(now)}, nil
}

// exchanged is a code exchange's tokens with the ID token's subject.
type exchanged struct {
	*fapi.Token
	sub string
}

// exchange redeems the code and, with openid, validates the ID token (the
// AS's JWK Set, iss, aud, nonce, exp, iat); the ID token is then dropped.
func (b *backend) exchange(ctx context.Context, cc *consentClient, a *fapi.Attempt, code string) (*exchanged, error) {
	tok, err := cc.fc.Exchange(ctx, a, code)
	if err != nil {
		return nil, err
	}
	fillExpiry(tok)
	out := &exchanged{Token: tok}
	if fapi.HasScope(a.Scope, "openid") {
		if tok.IDToken == "" {
			return nil, &fapi.IDTokenError{Check: fapi.CheckMalformed, Msg: "the token response has no id_token, which scope openid asks for"}
		}
		claims, err := fapi.ValidateIDToken(ctx, tok.IDToken, &fapi.JWKS{HTTP: cc.hc, URL: cc.meta.JWKSURI}, fapi.IDTokenCheck{
			Issuer: cc.cfg.Settings[bank.FieldIssuer], ClientID: cc.fc.ClientID, Nonce: a.Nonce, Now: b.clock.Now()})
		if err != nil {
			return nil, err
		}
		out.sub = claims.Subject
	}
	tok.IDToken = ""
	return out, nil
}

// fillExpiry gives a token without expires_in consentDefaultLifetime.
func fillExpiry(t *fapi.Token) {
	if t.ExpiresAt.IsZero() {
		t.ExpiresAt = t.IssuedAt.Add(consentDefaultLifetime)
	}
}

const pathConsentCallbackHelpSyn = `Complete a consent's authorization with the redirect the app received.`

const pathConsentCallbackHelpDesc = `
Write callback_url=<the redirect URL the app received> (or code, state and
iss; or error and error_description). bankauth checks state (constant time),
iss (RFC 9207: required with fapi=2.0 or when the server advertises it) and
the attempt's expiry, exchanges the code with the PKCE verifier, client
authentication and a DPoP proof, validates the ID token with openid, and
stores the tokens. The answer is the consent's status, as a read shows it.
An attempt is consumed by its first callback, success or not: a second one
is refused, and a failed one needs a new consent write.
`
