package bankauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// consent/<config>/<id>: a user's consent at an authorization_code config.
// A write starts an authorization attempt (PAR), a read shows the consent's
// status, a delete revokes its refresh token at the bank and removes it.

// Fields of a consent write.
const (
	fieldConsentScope       = "scope"
	fieldAuthorizationDetls = "authorization_details"
	fieldClaims             = "claims"
	fieldParams             = "params"
	fieldRedirectURI        = "redirect_uri"
	fieldAttemptTTL         = "ttl"
	fieldForce              = "force"
	fieldAfter              = "after"
	fieldLimit              = "limit"
)

// maxAttemptTTL bounds how long an attempt waits for its callback.
const maxAttemptTTL = time.Hour

// consentNamePattern captures <config>/<id>, both under the naming rule
// (request_names.go checks every capture).
var consentNamePattern = framework.GenericNameRegex("config") + "/" + framework.GenericNameRegex("id")

func consentNameFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"config": {Type: framework.TypeString, Required: true, Description: "Name of the authorization_code config."},
		"id":     {Type: framework.TypeString, Required: true, Description: "The app's name for the consent (a user or session)."},
	}
}

func pathConsent(b *backend) []*framework.Path {
	fields := consentNameFields()
	fields[fieldConsentScope] = &framework.FieldSchema{Type: framework.TypeString,
		Description: "Space-separated scope to ask for; default the config's scope."}
	fields[fieldAuthorizationDetls] = &framework.FieldSchema{Type: framework.TypeString,
		Description: "RFC 9396 authorization_details: a JSON array of objects each with a type (a JSON array, or its string form)."}
	fields[fieldClaims] = &framework.FieldSchema{Type: framework.TypeString,
		Description: "OpenID Connect claims request: a JSON object (or its string form)."}
	fields[fieldParams] = &framework.FieldSchema{Type: framework.TypeString,
		Description: "Extra authorization request parameters: a JSON object of strings; parameters bankauth sets cannot be given."}
	fields[fieldRedirectURI] = &framework.FieldSchema{Type: framework.TypeString,
		Description: "One of the config's redirect_uris; default the first."}
	fields[fieldAttemptTTL] = &framework.FieldSchema{Type: framework.TypeDurationSecond, Default: int(fapi.DefaultAttemptTTL / time.Second),
		Description: "How long the attempt waits for its callback: default 10m, at most 1h."}
	fields[fieldForce] = &framework.FieldSchema{Type: framework.TypeBool,
		Description: "delete only: remove the consent even when the bank fails to revoke its refresh token."}
	return []*framework.Path{
		{
			Pattern:        "consent/" + consentNamePattern,
			DisplayAttrs:   &framework.DisplayAttributes{OperationPrefix: "bankauth", OperationSuffix: "consent"},
			Fields:         fields,
			ExistenceCheck: b.consentExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				// PAR talks to the bank before storage is written: run it on
				// the active node so a standby never repeats it.
				logical.CreateOperation: &framework.PathOperation{Callback: b.consentBegin, ForwardPerformanceStandby: true,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "begin"}},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.consentBegin, ForwardPerformanceStandby: true,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "begin"}},
				logical.ReadOperation: &framework.PathOperation{Callback: b.consentRead,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.consentDelete, ForwardPerformanceStandby: true,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete"}},
			},
			HelpSynopsis:    pathConsentHelpSyn,
			HelpDescription: pathConsentHelpDesc,
		},
		{
			Pattern:      "consent/" + framework.GenericNameRegex("config") + "/?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "bankauth", OperationSuffix: "consents"},
			Fields: map[string]*framework.FieldSchema{
				"config": {Type: framework.TypeString, Required: true, Description: "Name of the authorization_code config."},
				fieldAfter: {Type: framework.TypeString,
					Description: "List only the ids after this one (sorted order), for the next page."},
				fieldLimit: {Type: framework.TypeInt,
					Description: "At most this many ids; 0 or absent means all."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.consentList,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"}},
			},
			HelpSynopsis:    pathConsentListHelpSyn,
			HelpDescription: pathConsentListHelpDesc,
		},
	}
}

func (b *backend) consentExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	rec, err := readConsent(ctx, req.Storage, d.Get("config").(string), d.Get("id").(string))
	return rec != nil, err
}

// parseBegin checks a consent write's fields against the config; a 400
// names the field, never its value.
func parseBegin(d *framework.FieldData, cfg *bank.Config) (*fapi.BeginRequest, *logical.Response) {
	r := &fapi.BeginRequest{Scope: cfg.Value(bank.FieldScope)}
	if v, ok := d.GetOk(fieldConsentScope); ok {
		r.Scope = strings.TrimSpace(v.(string))
	}
	uris := cfg.RedirectURIs()
	r.RedirectURI = uris[0]
	if v, ok := d.GetOk(fieldRedirectURI); ok && v.(string) != "" {
		if !slices.Contains(uris, v.(string)) {
			return nil, logical.ErrorResponse("invalid %s: must be one of the config's redirect_uris", fieldRedirectURI)
		}
		r.RedirectURI = v.(string)
	}
	if v, ok := d.GetOk(fieldAuthorizationDetls); ok && strings.TrimSpace(v.(string)) != "" {
		var arr []map[string]any
		if json.Unmarshal([]byte(v.(string)), &arr) != nil || len(arr) == 0 {
			return nil, logical.ErrorResponse("invalid %s: must be a JSON array of objects, each with a type (RFC 9396)", fieldAuthorizationDetls)
		}
		for _, o := range arr {
			if t, ok := o["type"].(string); !ok || t == "" {
				return nil, logical.ErrorResponse("invalid %s: must be a JSON array of objects, each with a type (RFC 9396)", fieldAuthorizationDetls)
			}
		}
		r.AuthorizationDetails = json.RawMessage(v.(string))
	}
	if v, ok := d.GetOk(fieldClaims); ok && strings.TrimSpace(v.(string)) != "" {
		var obj map[string]any
		if json.Unmarshal([]byte(v.(string)), &obj) != nil || obj == nil {
			return nil, logical.ErrorResponse("invalid %s: must be a JSON object", fieldClaims)
		}
		r.Claims = json.RawMessage(v.(string))
	}
	if v, ok := d.GetOk(fieldParams); ok && strings.TrimSpace(v.(string)) != "" {
		var obj map[string]string
		if json.Unmarshal([]byte(v.(string)), &obj) != nil || obj == nil {
			return nil, logical.ErrorResponse("invalid %s: must be a JSON object of strings", fieldParams)
		}
		names := make([]string, 0, len(obj))
		for k := range obj {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if k == "" || slices.Contains(fapi.ReservedParams, k) {
				return nil, logical.ErrorResponse("invalid %s: a parameter bankauth sets (%s) cannot be given", fieldParams, strings.Join(fapi.ReservedParams, ", "))
			}
		}
		r.Params = obj
	}
	ttl := time.Duration(d.Get(fieldAttemptTTL).(int)) * time.Second
	if ttl < time.Minute || ttl > maxAttemptTTL {
		return nil, logical.ErrorResponse("invalid %s: must be between 1m and %s", fieldAttemptTTL, maxAttemptTTL)
	}
	r.TTL = ttl
	return r, nil
}

// consentBegin starts an authorization attempt: PAR with client
// authentication, PKCE S256, state, nonce (with openid) and dpop_jkt. It
// answers authorization_url (where the app sends the user), state (the
// consent's) and expires_at (the attempt's). An authorized consent's
// tokens keep serving until the new attempt's callback succeeds.
func (b *backend) consentBegin(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.consentsInUse()
	config, id := d.Get("config").(string), d.Get("id").(string)
	defer b.consents.lock(config, id)()
	cc, resp, err := b.consentClientFor(ctx, req.Storage, config)
	if resp != nil || err != nil {
		return resp, err
	}
	defer b.closeConsentClient(config, cc)
	br, resp := parseBegin(d, cc.cfg)
	if resp != nil {
		return resp, nil
	}
	rec, err := readConsent(ctx, req.Storage, config, id)
	if err != nil {
		return nil, err
	}
	a, err := cc.fc.Begin(ctx, *br)
	if err != nil {
		return upstreamError(config, id, err)
	}
	now := b.clock.Now()
	if rec == nil {
		rec = &consentRecord{State: consentPending, CreatedAt: now}
		// Listed before it is stored: a failure between leaves a listed id
		// that reads 404 (consent_index.go).
		if err := b.indexConsent(ctx, req.Storage, config, id); err != nil {
			return nil, err
		}
	}
	rec.Attempt = a
	if rec.State != consentAuthorized {
		rec.State, rec.LastError = consentPending, ""
	}
	if err := putConsent(ctx, req.Storage, config, id, rec); err != nil {
		return nil, err
	}
	b.broker.ExpireAttemptAt(config, id, a.ExpiresAt)
	if err := putAttemptIndex(ctx, req.Storage, config, id, a.ExpiresAt); err != nil {
		// This node still removes the attempt at its expiry; only a restart
		// before then leaves it to a later attempt or delete.
		b.Logger().Warn("indexing a consent attempt failed", "config", config, "consent", id, "error", err)
	}
	b.Logger().Debug("consent attempt started", "config", config, "consent", id, "expires_at", a.ExpiresAt.UTC().Format(time.RFC3339))
	return &logical.Response{Data: map[string]any{
		"authorization_url": a.AuthorizationURL,
		"state":             rec.State,
		"expires_at":        a.ExpiresAt.UTC().Format(time.RFC3339),
	}}, nil
}

// upstreamError is a failed exchange with the authorization server: 502
// naming the consent and the step, the HTTP status and the server's error
// (package fapi's errors hold no secret).
func upstreamError(config, id string, err error) (*logical.Response, error) {
	var fe *fapi.Error
	var ce *fapi.CallbackError
	var ie *fapi.IDTokenError
	switch {
	case errors.As(err, &fe), errors.As(err, &ie):
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("consent %s/%s: %s", config, id, err))
	case errors.As(err, &ce):
		return logical.ErrorResponse("consent %s/%s: %s", config, id, err), nil
	}
	return nil, err
}

func (b *backend) consentRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.consentsInUse()
	rec, err := readConsent(ctx, req.Storage, d.Get("config").(string), d.Get("id").(string))
	if err != nil || rec == nil {
		return nil, err
	}
	return &logical.Response{Data: rec.consentData(b.clock.Now())}, nil
}

// consentDelete revokes the consent's refresh token at the bank (RFC 7009)
// and removes the consent. If the bank fails, 502 and nothing removed,
// unless force=true (removed, with a warning).
func (b *backend) consentDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.consentsInUse()
	config, id := d.Get("config").(string), d.Get("id").(string)
	force := d.Get(fieldForce).(bool)
	defer b.consents.lock(config, id)()
	defer b.broker.ForgetConsent(config, id) // before the lock is released
	rec, err := readConsent(ctx, req.Storage, config, id)
	if err != nil {
		return nil, err
	}
	if rec == nil { // an id listed without a record (consent_index.go) leaves the list
		return nil, b.unindexConsent(ctx, req.Storage, config, id)
	}
	var warning string
	if rec.Token != nil && rec.Token.RefreshToken != "" {
		status, why, err := b.revokeConsent(ctx, req.Storage, config, rec.Token.RefreshToken)
		switch {
		case err != nil:
			return nil, err
		case why != "" && !force:
			msg := fmt.Sprintf("consent %s/%s: %s (nothing removed; force=true removes the consent anyway)", config, id, why)
			if status == http.StatusBadGateway {
				return nil, logical.CodedError(status, msg)
			}
			return logical.ErrorResponse("%s", msg), nil
		case why != "":
			warning = fmt.Sprintf("consent %s/%s removed (force=true), but its refresh token was not revoked at the bank: %s", config, id, why)
		}
	}
	if err := req.Storage.Delete(ctx, consentKey(config, id)); err != nil {
		return nil, err
	}
	if err := b.unindexConsent(ctx, req.Storage, config, id); err != nil {
		b.Logger().Warn("removing a consent from the list failed", "config", config, "consent", id, "error", err) // a later delete removes it
	}
	if err := req.Storage.Delete(ctx, attemptKey(config, id)); err != nil {
		b.Logger().Warn("removing a consent's attempt index entry failed", "config", config, "consent", id, "error", err) // swept later
	}
	if warning == "" {
		return nil, nil
	}
	resp := &logical.Response{}
	resp.AddWarning(warning)
	return resp, nil
}

// revokeConsent revokes a refresh token at config's revocation endpoint
// (RFC 7009). It returns why it could not, with the HTTP status to answer
// (400: the config cannot be used; 502: the bank failed), or "".
func (b *backend) revokeConsent(ctx context.Context, s logical.Storage, config, refreshToken string) (int, string, error) {
	cc, resp, err := b.consentClientFor(ctx, s, config)
	if err != nil {
		return 0, "", err
	}
	if resp != nil {
		return http.StatusBadRequest, resp.Error().Error(), nil
	}
	defer b.closeConsentClient(config, cc)
	if err := cc.fc.Revoke(ctx, refreshToken); err != nil {
		return http.StatusBadGateway, err.Error(), nil
	}
	return http.StatusOK, "", nil
}

// consentList answers a page of the config's consent ids from the consent
// index (consent_index.go): the directory and the pages the answer needs,
// never every id.
func (b *backend) consentList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.consentsInUse()
	limit := d.Get(fieldLimit).(int)
	if limit < 0 {
		return logical.ErrorResponse("invalid %s: must be 0 or more", fieldLimit), nil
	}
	ids, err := listConsentIDs(ctx, req.Storage, d.Get("config").(string), d.Get(fieldAfter).(string), limit)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(ids), nil
}

const pathConsentHelpSyn = `Start a user's authorization at a FAPI 2.0 bank, read the consent's status, or revoke and remove it.`

const pathConsentHelpDesc = `
consent/<config>/<id> is a user's consent at a config with
grant_type=authorization_code; <id> is the app's own name for the user or
session.

Writing it pushes an authorization request (PAR with client authentication,
PKCE S256, state, nonce with openid, dpop_jkt with a dpop_key) and answers
authorization_url (send the user there), state (the consent's: pending, or
authorized while earlier tokens keep serving) and expires_at (when the
attempt stops waiting for its callback). Fields: scope (default the
config's), authorization_details (RFC 9396 JSON array), claims (JSON
object), params (JSON object of extra request parameters), redirect_uri
(one of the config's; default the first), ttl (default 10m, at most 1h).
Then write consent/<config>/<id>/callback with the redirect the app received.

Reading it shows state (pending, authorized, denied, expired, revoked), sub,
scope, authorization_details as granted, created_at, authorized_at,
consent_expires_at (null if unknown), last_refresh_at and last_error; never
a code, verifier, state value, nonce or token.

Deleting it revokes its refresh token at the bank (RFC 7009) and removes it.
If the bank fails, the answer is 502 and nothing is removed, unless
force=true (then it is removed with a warning).
`

const pathConsentListHelpSyn = `List the consents of an authorization_code config.`

const pathConsentListHelpDesc = `
Lists the ids of the config's consents in sorted order; read
consent/<config>/<id> for one's status. after=<id> starts after that id,
limit=<n> answers at most n ids (a page: pass the last id as the next
page's after).
`
