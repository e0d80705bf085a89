package bankauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/hashicorp/vault/sdk/framework"
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
	if resp := b.cachedTokenResponse(name); resp != nil {
		return resp, nil
	}
	res, err := b.broker.Get(ctx, store{b, req.Storage}, name)
	return b.tokenResult(name, res, err)
}

func (b *backend) tokenRefresh(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	res, err := b.broker.Refresh(ctx, store{b, req.Storage}, name)
	return b.tokenResult(name, res, err)
}

// tokenResult is the answer to a token read or refresh.
func (b *backend) tokenResult(name string, res broker.Result, err error) (*logical.Response, error) {
	if err != nil {
		return tokenError(name, err)
	}
	resp := b.tokenResponse(res.Token, res.Lease)
	if res.Warning != "" {
		resp.AddWarning(fmt.Sprintf("config %s: %s", name, res.Warning))
	}
	return resp, nil
}

// tokenResponse is a token as readers see it. With lease, it has a
// non-renewable lease that ends when the token does; without, it is plain
// data and expires_in/expires_at alone carry the expiry.
func (b *backend) tokenResponse(tok bank.Token, lease bool) *logical.Response {
	left := tok.ExpiresAt.Sub(b.clock.Now()).Truncate(time.Second)
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
// config or one that no longer validates (naming the field and the key), 429 naming the config when its request budget is spent, 502
// naming the config and the bank's answer for an upstream failure, and
// Vault's read-only error (so Vault forwards the request to the active
// node) when this node cannot store a new token.
func tokenError(name string, err error) (*logical.Response, error) {
	var noCfg broker.NoConfigError
	var consents consentConfigError
	var up *bank.UpstreamError
	var spent *bank.BudgetError
	var invalid *bank.FieldError
	var keyUse *bank.KeyUseError
	switch {
	case errors.As(err, &noCfg):
		return logical.ErrorResponse(noCfg.Error()), nil
	case errors.As(err, &consents):
		return logical.ErrorResponse(consents.Error()), nil
	case errors.Is(err, broker.ErrReadOnly):
		return nil, logical.ErrReadOnly
	case errors.As(err, &spent):
		return nil, logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf("config %s: %s", name, err))
	case errors.As(err, &up):
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("config %s: %s", name, err))
	case errors.As(err, &invalid), errors.As(err, &keyUse):
		// The stored config no longer holds with what it names (a key's
		// owner narrowed its purposes or pins): no request was sent, and
		// the operator must fix the config or the key.
		return logical.ErrorResponse("config %s cannot be used as stored: %s", name, err), nil
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
