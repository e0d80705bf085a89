package bankauth

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathConfig(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "config/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "config",
			},
			Fields:         configFields(),
			ExistenceCheck: b.configExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{Callback: b.configWrite,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"}},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.configWrite,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"}},
				logical.ReadOperation: &framework.PathOperation{Callback: b.configRead,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.configDelete,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete"}},
			},
			HelpSynopsis:    pathConfigHelpSyn,
			HelpDescription: pathConfigHelpDesc,
		},
		{
			Pattern: "config/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "configs",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.configList,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"}},
			},
			HelpSynopsis:    pathConfigListHelpSyn,
			HelpDescription: pathConfigListHelpDesc,
		},
	}
}

func (b *backend) configExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	cfg, err := readConfig(ctx, req.Storage, d.Get("name").(string))
	return cfg != nil, err
}

// configWrite creates or updates a config. An update changes only the fields
// it names (an empty value unsets a field); changing the provider starts the
// provider-specific fields afresh. The config is validated whole before
// anything is stored, and its cached token is dropped.
func (b *backend) configWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	// Lock order: profileLock, then the broker's lock of the name, then the
	// locks of the keys the config names (key_store.go).
	b.profileLock.RLock()
	defer b.profileLock.RUnlock()
	var resp *logical.Response
	err := b.broker.Change(ctx, name, func() error {
		existing, err := readConfig(ctx, req.Storage, name)
		if err != nil {
			return err
		}
		sent := sentFields(d) // before mergeWithProfile takes the profile's fields out of d
		cfg, err := mergeWithProfile(ctx, req.Storage, existing, d)
		if err == nil {
			// The keys named stay as they are read here until the config is
			// stored: a key delete or a change of its purposes or pins waits
			// (lock order: profileLock, the broker's lock of the name, keys).
			defer b.keys.rlockKeys(keyNames(cfg))()
			err = resolveConfigKeys(ctx, req.Storage, cfg) // signing_key, tls_key, dpop_key (key_config.go)
		}
		if err == nil { // grant_type=authorization_code: the issuer's metadata (config_authcode.go)
			if resp, err = b.discoverAuthServer(ctx, req.Storage, name, cfg, sent); resp != nil || err != nil {
				return err
			}
		}
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			resp, err = configError(err)
			return err
		}
		if resp = writeRules(existing, cfg, sent); resp != nil { // config_resend.go
			return nil
		}
		if b.keys.configWritten != nil {
			b.keys.configWritten()
		}
		se, err := logical.StorageEntryJSON(configPrefix+name, cfg)
		if err != nil {
			return err
		}
		if err := req.Storage.Put(ctx, se); err != nil {
			return err
		}
		// The old token was obtained with the old settings: never serve it
		// again (and should this delete fail, the token's config key keeps
		// it from being served).
		return req.Storage.Delete(ctx, tokenPrefix+name)
	})
	return resp, err
}

// configError turns a *bank.FieldError into a 400 naming the field.
func configError(err error) (*logical.Response, error) {
	var fe *bank.FieldError
	if errors.As(err, &fe) {
		return logical.ErrorResponse("invalid %s: %s", fe.Field, fe.Message), nil
	}
	return nil, err
}

// configRead shows a config's settings and, for each secret, only whether it
// is set.
func (b *backend) configRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg, err := readConfig(ctx, req.Storage, d.Get("name").(string))
	if err != nil || cfg == nil {
		return nil, err
	}
	if err := attachProfile(ctx, req.Storage, cfg); err != nil {
		return configError(err)
	}
	data := map[string]any{
		bank.FieldProvider: cfg.Provider,
		bank.FieldBaseURL:  cfg.EffectiveBaseURL(),
		bank.FieldTimeout:  int64(cfg.EffectiveTimeout() / time.Second),
		fieldLease:         !cfg.NoLease,
	}
	if cfg.CACert != "" {
		data[bank.FieldCACert] = cfg.CACert
	}
	for k, v := range lifecycleData(cfg) {
		data[k] = v
	}
	readCommonFields(cfg, data)
	readKeyFields(cfg, data) // key_config.go
	if p, ok := cfg.Lookup(); ok {
		authCode := bank.AuthCodeFieldNames()
		for _, f := range p.Fields() {
			switch {
			case authCode[f.Name] && !cfg.IsAuthorizationCode():
				// client credentials configs read as before issue 19
			case f.Secret:
				data[f.Name+"_set"] = cfg.Secrets[f.Name] != ""
			case f.Name == fieldOAuthMetadata:
				if cfg.OAuthMetadata != nil {
					data[f.Name] = cfg.OAuthMetadata
				}
			default:
				data[f.Name] = cfg.Value(f.Name)
			}
		}
	}
	if cfg.IsAuthorizationCode() { // metadata age, endpoints set by hand, a held-back refresh (config_authcode_meta.go)
		for k, v := range authServerData(cfg) {
			data[k] = v
		}
	}
	return &logical.Response{Data: data}, nil
}

// configDelete removes a config, its stored token and request budget, and
// everything memory holds for it.
func (b *backend) configDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	// Consents hold refresh tokens only this config can revoke.
	if ids, err := listConsentIDs(ctx, req.Storage, name, "", 1); err != nil {
		return nil, err
	} else if len(ids) > 0 {
		return logical.ErrorResponse("config %s has consents: delete them first (vault list consent/%s; each delete revokes its refresh token at the bank)", name, name), nil
	}
	err := b.broker.Remove(ctx, name, func() error {
		for _, prefix := range []string{tokenPrefix, configPrefix, budgetPrefix} {
			if err := req.Storage.Delete(ctx, prefix+name); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		b.consentStats.forget(name)
	}
	return nil, err
}

func (b *backend) configList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, configPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return logical.ListResponse(names), nil
}

const pathConfigHelpSyn = `Configure a bank connection: provider, endpoint and credentials.`

const pathConfigHelpDesc = `
Each config names one bank connection. Common fields: provider (required),
base_url, ca_cert, timeout, tls_client_cert and tls_client_key* (mutual TLS,
both or neither), cache, lease (default true: token reads carry a Vault
lease; false: no lease, expires_in/expires_at carry the expiry),
default_lifetime, background_refresh_idle, max_requests_per_minute,
max_requests_per_day. Provider fields:

  isbank             client_id, client_secret*, service_account_id,
                     service_account_secret*, scope; base_url is required
  etranzact          username, password*
  rakbank            client_id, client_secret*, scope, oauth_metadata
  accelerationcloud  client_id, client_secret*, user_id
  <profile name>     the fields the profile at profile/<name> declares
  oauth2             token_url, client_id, client_secret*, scope, audience,
                     auth_method (client_secret_basic, client_secret_post,
                     private_key_jwt, tls_client_auth), basic_encoding,
                     private_key*, key_id, signing_alg, assertion_audience;
                     with grant_type=authorization_code (user consents):
                     issuer, redirect_uris, fapi, and the endpoints
                     authorization_url, par_url, token_url, revocation_url,
                     jwks_uri, taken from the issuer's metadata (refreshed
                     after 24 h; a move to another host waits for a config
                     write, see metadata_pending_change) or set by hand

Fields marked * are write-only: a read shows only <field>_set. An update
changes only the fields it names; an empty value unsets a field. Any change
drops the cached token, and deleting the config removes it.
`

const pathConfigListHelpSyn = `List the names of configured bank connections.`

const pathConfigListHelpDesc = `Lists every config name; read token/<name> for its access token.`

// readCommonFields adds the common fields to a config read: the certificate
// is public, the key only shows whether it is set.
func readCommonFields(cfg *bank.Config, data map[string]any) {
	if cfg.TLSClientCert != "" {
		data[bank.FieldTLSClientCert] = cfg.TLSClientCert
	}
	data[bank.FieldTLSClientKey+"_set"] = cfg.TLSClientKey != ""
	data[fieldCache] = !cfg.NoCache
}

// lifecycleData is what a config read shows of the lifecycle settings: the
// values in effect, defaults included.
func lifecycleData(cfg *bank.Config) map[string]any {
	limits := cfg.EffectiveLimits()
	return map[string]any{
		bank.FieldDefaultLifetime:       int64(cfg.DefaultLifetime / time.Second),
		bank.FieldBackgroundRefreshIdle: int64(cfg.EffectiveBackgroundRefreshIdle() / time.Second),
		bank.FieldMaxRequestsPerMinute:  limits.PerMinute,
		bank.FieldMaxRequestsPerDay:     limits.PerDay,
	}
}
