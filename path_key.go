package bankauth

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathKey(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "key/" + framework.GenericNameRegex("name") + "$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "key",
			},
			Fields: withKeyUseFields(map[string]*framework.FieldSchema{
				"name": {Type: framework.TypeNameString, Required: true, Description: "Name of the key."},
				"type": {Type: framework.TypeString,
					Description: "Key type to generate: " + strings.Join(keyring.Types, ", ") + ". Set on create only."},
				"key": {Type: framework.TypeString, DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
					Description: "A PEM private key (PKCS #1, PKCS #8 or SEC 1) to import instead of generating one, on create only. Never shown again."},
				"kid": {Type: framework.TypeString,
					Description: "Key ID of the latest version (e.g. the one a bank's directory assigned). Default: the version's RFC 7638 thumbprint."},
				"public_jwks": {Type: framework.TypeBool,
					Description: "Serve the published versions without a Vault token at jwks/<name>. Default false."},
				"min_version": {Type: framework.TypeInt,
					Description: "Oldest version still published in the JWK Set."},
			}),
			ExistenceCheck: b.keyExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{Callback: b.keyWrite,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "create"}},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.keyWrite,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "update"}},
				logical.ReadOperation: &framework.PathOperation{Callback: b.keyRead,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.keyDelete,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete"}},
			},
			HelpSynopsis:    pathKeyHelpSyn,
			HelpDescription: pathKeyHelpDesc,
		},
		{
			Pattern: "key/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "keys",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.keyList,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"}},
			},
			HelpSynopsis:    pathKeyListHelpSyn,
			HelpDescription: pathKeyListHelpDesc,
		},
		{
			Pattern: "key/" + framework.GenericNameRegex("name") + "/rotate$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "key",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {Type: framework.TypeNameString, Required: true, Description: "Name of the key."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.keyRotate,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "rotate"}},
			},
			HelpSynopsis:    pathKeyRotateHelpSyn,
			HelpDescription: pathKeyRotateHelpDesc,
		},
		pathKeyCSR(b),
		pathKeyCertificate(b),
	}
}

func (b *backend) keyExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	se, err := req.Storage.Get(ctx, keyPrefix+d.Get("name").(string))
	return se != nil, err
}

// keyWrite creates a key (generated, or imported from key) or updates its
// kid, public_jwks and min_version. Nothing is stored unless every field is
// valid.
func (b *backend) keyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	lock := b.keys.lock(name)
	lock.Lock()
	defer lock.Unlock()
	k, err := readKey(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	typ := strings.TrimSpace(d.Get("type").(string))
	pemKey, importing := d.GetOk("key")
	creating := k == nil
	switch {
	case k == nil && importing:
		k, err = keyring.Import(pemKey.(string), b.keys.clock())
		if err != nil {
			return logical.ErrorResponse("invalid key: %s", err.Error()), nil
		}
		if typ != "" && typ != k.Type {
			return logical.ErrorResponse("invalid type: the imported key is an %s key; leave type out when importing", k.Type), nil
		}
	case k == nil:
		if typ == "" {
			return logical.ErrorResponse("invalid type: is required: one of %s (or import a PEM private key with key)",
				strings.Join(keyring.Types, ", ")), nil
		}
		if k, err = keyring.Generate(typ, nil, b.keys.clock()); err != nil {
			return logical.ErrorResponse("invalid type: %s", err.Error()), nil
		}
	case importing:
		return logical.ErrorResponse("invalid key: a key is imported only when it is created; rotate, or delete and re-create, to change it"), nil
	case typ != "" && typ != k.Type:
		return logical.ErrorResponse("invalid type: the key is %s; the type of a key cannot change", k.Type), nil
	}
	if v, ok := d.GetOk("kid"); ok {
		if err := k.SetKID(v.(string)); err != nil {
			return logical.ErrorResponse("invalid kid: %s", err.Error()), nil
		}
	}
	if v, ok := d.GetOk("public_jwks"); ok {
		k.PublicJWKS = v.(bool)
	}
	if v, ok := d.GetOk("min_version"); ok {
		if err := k.SetMinVersion(v.(int)); err != nil {
			return logical.ErrorResponse("invalid min_version: %s", err.Error()), nil
		}
	}
	if resp := applyKeyUse(k, d, creating); resp != nil { // key_purpose.go
		return resp, nil
	}
	if err := b.writeKey(ctx, req.Storage, name, k); err != nil {
		return nil, err
	}
	if err := b.forgetKeyUsers(ctx, req.Storage, name); err != nil {
		return nil, err
	}
	resp, err := keyResponse(k)
	if err != nil {
		return nil, err
	}
	// Narrowing a key while configs use it is allowed (its owner decides);
	// their fetches then fail naming the key, and the writer is told.
	stranded, err := b.strandedConfigs(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if len(stranded) > 0 {
		resp.AddWarning("configs " + strings.Join(stranded, ", ") + " name this key for a purpose, endpoint or audience it no longer allows: their token fetches fail until the key or those configs change")
	}
	return resp, nil
}

func (b *backend) keyRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	k, err := readKey(ctx, req.Storage, d.Get("name").(string))
	if err != nil || k == nil {
		return nil, err
	}
	return keyResponse(k)
}

// keyResponse shows a key's public material only.
func keyResponse(k *keyring.Key) (*logical.Response, error) {
	latest := k.Latest()
	pubPEM, err := latest.PublicPEM()
	if err != nil {
		return nil, err
	}
	jwk, err := k.JWK(latest)
	if err != nil {
		return nil, err
	}
	versions := map[string]any{}
	for _, v := range k.Versions {
		p, err := v.PublicPEM()
		if err != nil {
			return nil, err
		}
		versions[strconv.Itoa(v.Number)] = map[string]any{
			"kid": v.KID, "created_at": v.CreatedAt.Format(time.RFC3339), "public_key": p,
		}
	}
	data := map[string]any{
		"type":           k.Type,
		"kid":            latest.KID,
		"latest_version": k.LatestVersion(),
		"min_version":    max(k.MinVersion, 1),
		"public_jwks":    k.PublicJWKS,
		"imported":       k.Imported,
		"public_key":     pubPEM,
		"jwk":            toMap(jwk),
		"versions":       versions,
		"certificate":    nil,
	}
	if c := certificateSummary(k); c != nil {
		data["certificate"] = c
	}
	keyUseData(k, data) // key_purpose.go
	return &logical.Response{Data: data}, nil
}

// certificateSummary is the attached leaf's subject, issuer, serial,
// not_after and key version, or nil.
func certificateSummary(k *keyring.Key) map[string]any {
	s := k.Certificate.Summary()
	if s == nil {
		return nil
	}
	return map[string]any{"subject": s.Subject, "issuer": s.Issuer, "serial": s.Serial,
		"not_after": s.NotAfter.Format(time.RFC3339), "version": s.Version}
}

// toMap turns a struct into the map a response carries, by its JSON names.
func toMap(v any) map[string]any {
	enc, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(enc, &m)
	return m
}

func (b *backend) keyDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	lock := b.keys.lock(name)
	lock.Lock()
	defer lock.Unlock()
	users, err := b.configsUsingKey(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if len(users) > 0 {
		return logical.ErrorResponse("key %q is in use by config %s; change or delete those configs first",
			name, strings.Join(users, ", ")), nil
	}
	return nil, b.deleteKey(ctx, req.Storage, name)
}

func (b *backend) keyList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, keyPrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

// keyRotate adds a version and makes it the signing one.
func (b *backend) keyRotate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	lock := b.keys.lock(name)
	lock.Lock()
	defer lock.Unlock()
	k, resp, err := existingKey(ctx, req.Storage, name)
	if k == nil {
		return resp, err
	}
	if err := k.Rotate(nil, b.keys.clock()); err != nil {
		return nil, errors.New("cannot generate a new key version")
	}
	if err := b.writeKey(ctx, req.Storage, name, k); err != nil {
		return nil, err
	}
	if err := b.forgetKeyUsers(ctx, req.Storage, name); err != nil {
		return nil, err
	}
	return keyResponse(k)
}

const pathKeyHelpSyn = `Signing keys generated and kept in Vault: create, update, read, delete.`

const pathKeyHelpDesc = `
A key is generated inside the plugin and its private part never leaves it:

  vault write bankauth/key/<name> type=rsa-2048|rsa-3072|rsa-4096|ec-p256|ec-p384 purpose=...

or, for a key a bank already registered, imported once from PEM:

  vault write bankauth/key/<name> key=@private.pem purpose=...

purpose (required on create; comma-separated or a list) is what the key may
be used for: client_auth (a config's signing_key), tls (tls_key), dpop
(dpop_key and dpop/<config>), request_signing (sign/<name>). A client_auth
key also pins where its client assertions may go, before any config may use
it: allowed_endpoints (URL prefixes of token endpoints, e.g.
https://as.bank.example/) and allowed_audiences (exact aud values). Only a
writer of key/<name> changes them; configs that no longer fit fail their
fetches naming the key (the write warns).

Other fields: kid (key ID of the latest version; default its RFC 7638
thumbprint), public_jwks (serve the JWK Set at jwks/<name> without a token;
default false), min_version (oldest version still published).

A read shows public material only: type, kid, latest_version, min_version,
public_jwks, public_key (PEM of the latest version), jwk, versions (each with
kid, created_at, public_key), the attached certificate's summary, purpose,
allowed_endpoints and allowed_audiences. Keys are stored seal-wrapped. A key
a config uses cannot be deleted.

Related paths: key/<name>/rotate, key/<name>/csr, key/<name>/certificate,
sign/<name>, jwks/<name>.
`

const pathKeyListHelpSyn = `List the signing keys.`

const pathKeyListHelpDesc = `Lists the names of the keys written to key/<name>.`

const pathKeyRotateHelpSyn = `Add a key version and make it the signing one.`

const pathKeyRotateHelpDesc = `
vault write -f bankauth/key/<name>/rotate generates a new version of the
key's type. New signatures use it; versions from min_version on stay in the
JWK Set, so a bank that caches the JWKS keeps accepting during the overlap.
Raise min_version once every bank has fetched the new set.
`
