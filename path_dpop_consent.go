package bankauth

import (
	"context"
	"errors"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// dpop/<config> consent=<id>: a DPoP proof (RFC 9449) for a resource
// request made with a consent's access token. The proof is signed by the
// config's dpop_key, the key the consent's tokens are bound to, and its
// ath binds the consent's current access token: the one token/<config>/<id>
// serves, refreshed first when stale, so a proof never binds a token a
// reader would not get.

// consentDPoPProof answers dpop/<config> for cfg when cfg is an
// authorization_code config or the request names a consent. Either both
// hold, or the answer is a 400 naming consent.
func (b *backend) consentDPoPProof(ctx context.Context, req *logical.Request, d *framework.FieldData, cfg *bank.Config) (*logical.Response, error) {
	name, id := d.Get("name").(string), d.Get("consent").(string)
	if !cfg.IsAuthorizationCode() {
		return logical.ErrorResponse("invalid consent: config %s does not have grant_type authorization_code: its proofs bind token/%s, leave consent out", name, name), nil
	}
	if id == "" {
		return logical.ErrorResponse("invalid consent: config %s's tokens belong to consents: give consent=<id>, the consent whose token the proof binds", name), nil
	}
	if !validName(id, false) {
		return logical.ErrorResponse("invalid consent: a name is %s", nameRule), nil
	}
	keyName := cfg.Settings[bank.FieldDPoPKey]
	if keyName == "" {
		return logical.ErrorResponse("invalid name: config %q has no dpop_key", name), nil
	}
	k, err := readKey(ctx, req.Storage, keyName)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return logical.ErrorResponse("invalid dpop_key: key %s does not exist", keyName), nil
	}
	if err := (keySigner{keyName, k}).Use().Require(bank.PurposeDPoP); err != nil {
		return logical.ErrorResponse("invalid dpop_key: %s", err.Error()), nil
	}
	htm, htu := d.Get("htm").(string), d.Get("htu").(string)
	var fe *keyring.FieldError
	if err := (keyring.DPoPRequest{Method: htm, URL: htu}).Check(); errors.As(err, &fe) {
		return logical.ErrorResponse("invalid %s: %s", fe.Field, fe.Msg), nil
	}
	// The consent's token as a read answers it: cached, or refreshed under
	// the consent's lock; a consent without one is the same 400 naming
	// re-authorization.
	tr, err := b.consentToken(ctx, req, name, id, false)
	if err != nil || tr == nil || tr.IsError() {
		return tr, err
	}
	token, _ := tr.Data["access_token"].(string)
	if token == "" {
		return nil, errors.New("the consent's token answer has no access_token")
	}
	nonce := d.Get("nonce").(string)
	if nonce == "" {
		if n, ok := b.dpopNonces.Load(name); ok {
			nonce = n.(string)
		}
	}
	proof, err := fapi.KeyDPoP{Key: k, Now: b.clock.Now}.Proof(htm, htu, nonce, token)
	if errors.As(err, &fe) {
		return logical.ErrorResponse("invalid %s: %s", fe.Field, fe.Msg), nil
	}
	if err != nil {
		return nil, err
	}
	resp := &logical.Response{Data: map[string]any{"dpop": proof, "token_type": tr.Data["token_type"]}}
	for _, w := range tr.Warnings {
		resp.AddWarning(w)
	}
	return resp, nil
}
