package bankauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const fieldOAuthMetadata = engine.FieldOAuthMetadata

// fieldLease turns Vault leases on token reads on (default) or off.
const fieldLease = "lease"

// configFields is the schema of config/<name>: the common fields plus every
// provider's own fields. Which of these a config may set depends on its
// provider; Validate enforces that.
func configFields() map[string]*framework.FieldSchema {
	fields := map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeNameString, Required: true,
			Description: "Name of the bank connection; tokens are read at token/<name>."},
		engine.FieldProvider: {Type: framework.TypeString, Required: true,
			Description: "Bank protocol: " + strings.Join(engine.Names(), ", ") + ", or the name of a profile written to profile/<name>. Required when creating."},
		engine.FieldBaseURL: {Type: framework.TypeString,
			Description: "Bank API base URL (https; http only for loopback). Defaults to the provider's public sandbox where it has one; required for isbank."},
		engine.FieldCACert: {Type: framework.TypeString,
			Description: "PEM certificates trusted for the bank's TLS, in addition to the system roots."},
		engine.FieldTimeout: {Type: framework.TypeDurationSecond,
			Description: fmt.Sprintf("Limit for one token fetch, all steps included. Default %s, at most %s.", engine.DefaultTimeout, engine.MaxTimeout)},
		fieldLease: {Type: framework.TypeBool, Default: true,
			Description: "Whether token reads carry a non-renewable Vault lease (default true). With false, reads return the same data without a lease (expires_in and expires_at carry the expiry) and cost Vault no lease entry; Vault Agent then re-reads only every static_secret_render_interval."},
	}
	for name, f := range engine.AllFields() {
		fs := &framework.FieldSchema{Type: framework.TypeString, Description: f.Description}
		if f.Secret {
			fs.DisplayAttrs = &framework.DisplayAttributes{Sensitive: true}
		}
		fields[name] = fs
	}
	for name, fs := range commonConfigFields() {
		fields[name] = fs
	}
	for name, f := range lifecycleFields() {
		fields[name] = f
	}
	fields[fieldOAuthMetadata].Description = `RAKBANK only: JSON object sent as oauth_metadata, e.g. {"account_id":"0188000049916"}. Accepts a JSON string or an object.`
	return fields
}

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
	// Lock order: profileLock, then the entry (profileWrite drops tokens).
	b.profileLock.RLock()
	defer b.profileLock.RUnlock()
	e := b.entryFor(name)
	if err := e.acquire(ctx); err != nil {
		return nil, err
	}
	defer e.release()

	existing, err := readConfig(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	sent := sentFields(d) // before mergeWithProfile takes the profile's fields out of d
	cfg, err := mergeWithProfile(ctx, req.Storage, existing, d)
	if err != nil {
		return configError(err)
	}
	if err := cfg.Validate(); err != nil {
		return configError(err)
	}
	if resp := writeRules(existing, cfg, sent); resp != nil { // config_resend.go
		return resp, nil
	}
	se, err := logical.StorageEntryJSON(configPrefix+name, cfg)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, se); err != nil {
		return nil, err
	}
	// The old token was obtained with the old settings: never serve it again.
	if err := req.Storage.Delete(ctx, tokenPrefix+name); err != nil {
		return nil, err
	}
	e.forget()
	return nil, nil
}

// mergeConfig applies the request's fields to a copy of existing (nil when
// creating).
func mergeConfig(existing *engine.Config, d *framework.FieldData) (*engine.Config, error) {
	cfg := &engine.Config{Settings: map[string]string{}, Secrets: map[string]string{}}
	if existing != nil {
		cfg.Provider, cfg.BaseURL, cfg.CACert, cfg.Timeout = existing.Provider, existing.BaseURL, existing.CACert, existing.Timeout
		cfg.OAuthMetadata = existing.OAuthMetadata
		cfg.Lifecycle = existing.Lifecycle
		copyCommonFields(cfg, existing)
		for k, v := range existing.Settings {
			cfg.Settings[k] = v
		}
		for k, v := range existing.Secrets {
			cfg.Secrets[k] = v
		}
	}
	if p, ok := d.GetOk(engine.FieldProvider); ok && p.(string) != cfg.Provider {
		prev := cfg
		cfg = &engine.Config{Provider: p.(string), BaseURL: cfg.BaseURL, CACert: cfg.CACert, Timeout: cfg.Timeout,
			Settings: map[string]string{}, Secrets: map[string]string{}, Lifecycle: cfg.Lifecycle}
		copyCommonFields(cfg, prev)
	}
	provFields := engine.AllFields()
	for key := range d.Raw {
		switch key {
		case "name", engine.FieldProvider:
		case engine.FieldBaseURL:
			cfg.BaseURL = strings.TrimRight(strings.TrimSpace(d.Get(key).(string)), "/")
		case engine.FieldCACert:
			cfg.CACert = strings.TrimSpace(d.Get(key).(string))
		case engine.FieldTimeout:
			cfg.Timeout = time.Duration(d.Get(key).(int)) * time.Second
		case fieldLease:
			cfg.NoLease = !d.Get(key).(bool)
		case fieldOAuthMetadata:
			md, err := parseMetadata(d.Get(key).(string))
			if err != nil {
				return nil, err
			}
			cfg.OAuthMetadata = md
		default:
			if mergeLifecycle(&cfg.Lifecycle, key, d) {
				continue
			}
			if ok, err := mergeCommonField(cfg, key, d); ok || err != nil {
				if err != nil {
					return nil, err
				}
				continue
			}
			f, ok := provFields[key]
			if !ok {
				return nil, &engine.FieldError{Field: key, Message: "unknown field"}
			}
			target := cfg.Settings
			if f.Secret {
				target = cfg.Secrets
			}
			if v := d.Get(key).(string); v != "" {
				target[key] = v
			} else {
				delete(target, key)
			}
		}
	}
	return cfg, nil
}

// parseMetadata parses oauth_metadata: "" unsets it, else a JSON object.
func parseMetadata(raw string) (map[string]any, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var md map[string]any
	if err := json.Unmarshal([]byte(raw), &md); err != nil || md == nil {
		return nil, &engine.FieldError{Field: fieldOAuthMetadata, Message: `must be a JSON object, e.g. {"account_id":"0188000049916"}`}
	}
	return md, nil
}

// configError turns a *engine.FieldError into a 400 naming the field.
func configError(err error) (*logical.Response, error) {
	var fe *engine.FieldError
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
		engine.FieldProvider: cfg.Provider,
		engine.FieldBaseURL:  cfg.EffectiveBaseURL(),
		engine.FieldTimeout:  int64(cfg.EffectiveTimeout() / time.Second),
		fieldLease:           !cfg.NoLease,
	}
	if cfg.CACert != "" {
		data[engine.FieldCACert] = cfg.CACert
	}
	for k, v := range lifecycleData(cfg) {
		data[k] = v
	}
	readCommonFields(cfg, data)
	if p, ok := cfg.Lookup(); ok {
		for _, f := range p.Fields() {
			switch {
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
	return &logical.Response{Data: data}, nil
}

// configDelete removes a config and its cached token.
func (b *backend) configDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	e := b.entryFor(name)
	if err := e.acquire(ctx); err != nil {
		return nil, err
	}
	defer e.release()
	if err := req.Storage.Delete(ctx, tokenPrefix+name); err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, configPrefix+name); err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, budgetPrefix+name); err != nil {
		return nil, err
	}
	e.budget = nil
	e.forget()
	return nil, nil
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
                     private_key*, key_id, signing_alg, assertion_audience

Fields marked * are write-only: a read shows only <field>_set. An update
changes only the fields it names; an empty value unsets a field. Any change
drops the cached token, and deleting the config removes it.
`

const pathConfigListHelpSyn = `List the names of configured bank connections.`

const pathConfigListHelpDesc = `Lists every config name; read token/<name> for its access token.`
