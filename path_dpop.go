package bankauth

import (
	"context"
	"errors"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathDPoP(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "dpop/" + framework.GenericNameRegex("name") + "$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "bankauth",
			OperationSuffix: "dpop-proof",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeNameString, Required: true, Description: "Name of a config with a dpop_key."},
			"consent": {Type: framework.TypeString,
				Description: "On a grant_type=authorization_code config (required there): the consent whose access token the proof binds (ath)."},
			"htm": {Type: framework.TypeString, Required: true, Description: "HTTP method of the resource request, e.g. GET."},
			"htu": {Type: framework.TypeString, Required: true, Description: "URL of the resource request (its query and fragment are left out of the proof)."},
			"nonce": {Type: framework.TypeString,
				Description: "A DPoP-Nonce the resource server gave. Default: the latest nonce the bank's token endpoint gave."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.dpopProof,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "generate"}},
		},
		HelpSynopsis:    pathDPoPHelpSyn,
		HelpDescription: pathDPoPHelpDesc,
	}}
}

// dpopProof makes a DPoP proof for a resource request with the config's
// dpop_key, bound to its current access token (fetched if need be), or,
// on an authorization_code config, to the access token of the consent
// named by the consent field.
func (b *backend) dpopProof(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	cfg, err := readConfig(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return logical.ErrorResponse("invalid name: %s", broker.NoConfigError(name).Error()), nil
	}
	if cfg.IsAuthorizationCode() || d.Get("consent").(string) != "" {
		return b.consentDPoPProof(ctx, req, d, cfg) // path_dpop_consent.go
	}
	keyName := cfg.Settings[bank.FieldDPoPKey]
	if keyName == "" {
		return logical.ErrorResponse("invalid name: config %q has no dpop_key", name), nil
	}
	if k, err := readKey(ctx, req.Storage, keyName); err != nil {
		return nil, err
	} else if k != nil {
		if err := (keySigner{keyName, k}).Use().Require(bank.PurposeDPoP); err != nil {
			return logical.ErrorResponse("invalid dpop_key: %s", err.Error()), nil
		}
	}
	proof, tok, err := b.broker.DPoPProof(ctx, store{b, req.Storage}, name, d.Get("htm").(string), d.Get("htu").(string), d.Get("nonce").(string))
	if tok.AccessToken == "" && err != nil {
		return tokenError(name, err)
	}
	var fe *keyring.FieldError
	if errors.As(err, &fe) {
		return logical.ErrorResponse("invalid %s: %s", fe.Field, fe.Msg), nil
	}
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"dpop": proof, "token_type": tok.TokenType}}, nil
}

const pathDPoPHelpSyn = `A DPoP proof (RFC 9449) for a resource request with a config's dpop_key.`

const pathDPoPHelpDesc = `
vault write bankauth/dpop/<config> htm=GET htu=https://api.bank.example/accounts

answers dpop: a proof signed by the config's dpop_key, with htm, htu, a
fresh jti, iat, nonce (the one given, else the latest DPoP-Nonce the bank's
token endpoint gave), and ath, the base64url
SHA-256 of the config's current access token (the one token/<config>
serves). Send it as the DPoP header with Authorization: DPoP <token>.

vault write bankauth/dpop/<config> consent=<id> htm=GET htu=https://api.bank.example/accounts

does the same for a grant_type=authorization_code config, whose tokens
belong to consents: ath binds the consent's current access token (the one
token/<config>/<id> serves, refreshed first when it is stale), and the
nonce defaults to the latest DPoP-Nonce the bank's authorization server
gave. consent is required on such a config and refused on any other; a
consent without a usable token answers 400 naming re-authorization, as
token/<config>/<id> does.
`
