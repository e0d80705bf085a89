package bankauth

import (
	"context"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// publicJWKSPaths are served without a Vault token (PathsSpecial); each
// key decides with public_jwks whether it answers.
const publicJWKSPaths = "jwks/*"

func pathJWKS(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "jwks/" + framework.GenericNameRegex("name") + "$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "bankauth",
			OperationSuffix: "jwks",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeNameString, Required: true, Description: "Name of the key."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.jwksRead,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
		},
		HelpSynopsis:    pathJWKSHelpSyn,
		HelpDescription: pathJWKSHelpDesc,
	}}
}

// jwksRead serves the published versions as a raw application/json JWK
// Set, or 404 unless the key exists and has public_jwks=true: a caller
// without a token learns nothing of keys that are not public, not even
// from timing, since the sets are rendered ahead (jwks_cache.go).
func (b *backend) jwksRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	body, err := b.jwks.body(ctx, req.Storage, d.Get("name").(string))
	if err != nil || body == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		logical.HTTPContentType: "application/json",
		logical.HTTPRawBody:     body,
		logical.HTTPStatusCode:  http.StatusOK,
	}}, nil
}

const pathJWKSHelpSyn = `A key's published versions as a JWK Set, without a Vault token.`

const pathJWKSHelpDesc = `
GET /v1/<mount>/jwks/<name> answers {"keys":[...]} as raw application/json:
the public JWKs of versions min_version to latest, newest first, each with
kid, use "sig", alg, and x5c for the version the attached certificate is
for. It needs no Vault token, so a bank or directory can fetch it as a
jwks_uri, and answers 404 unless the key has public_jwks=true.
`
