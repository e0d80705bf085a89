package bankauth

import (
	"fmt"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/vault/sdk/framework"
)

// The schema of config/<name>: every field a config may set, and the checks
// on raw input that come before the framework parses it.

const fieldOAuthMetadata = bank.FieldOAuthMetadata

// fieldLease turns Vault leases on token reads on (default) or off.
const fieldLease = "lease"

// configFields is the schema of config/<name>: the common fields plus every
// provider's own fields. Which of these a config may set depends on its
// provider; Validate enforces that.
func configFields() map[string]*framework.FieldSchema {
	fields := map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeNameString, Required: true,
			Description: "Name of the bank connection; tokens are read at token/<name>."},
		bank.FieldProvider: {Type: framework.TypeString, Required: true,
			Description: "Bank protocol: " + strings.Join(bank.Names(), ", ") + ", or the name of a profile written to profile/<name>. Required when creating."},
		bank.FieldBaseURL: {Type: framework.TypeString,
			Description: "Bank API base URL (https; http only for loopback). Defaults to the provider's public sandbox where it has one; required for isbank."},
		bank.FieldCACert: {Type: framework.TypeString,
			Description: "PEM certificates trusted for the bank's TLS, in addition to the system roots."},
		bank.FieldTimeout: {Type: framework.TypeDurationSecond,
			Description: fmt.Sprintf("Limit for one token fetch, all steps included. Default %s, at most %s.", bank.DefaultTimeout, bank.MaxTimeout)},
		fieldLease: {Type: framework.TypeBool, Default: true,
			Description: "Whether token reads carry a non-renewable Vault lease (default true). With false, reads return the same data without a lease (expires_in and expires_at carry the expiry) and cost Vault no lease entry; Vault Agent then re-reads only every static_secret_render_interval."},
	}
	for name, f := range bank.AllFields() {
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

// commonConfigFields are config fields that apply to every provider and are
// kept when a config changes provider: the mTLS client certificate and
// whether tokens are cached.
func commonConfigFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		bank.FieldTLSClientCert: {Type: framework.TypeString,
			Description: "PEM client certificate (chain) presented to the bank for mutual TLS. Requires tls_client_key."},
		bank.FieldTLSClientKey: {Type: framework.TypeString,
			Description:  "PEM private key of tls_client_cert (PKCS#8, PKCS#1 or EC). Write-only.",
			DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
		fieldCache: {Type: framework.TypeBool, Default: true,
			Description: "Cache the token (default). false: every read fetches a new token and nothing is stored, for banks whose tokens are single-use."},
	}
}

const fieldCache = "cache"

// lifecycleFields are the config fields for token lifetime, background
// refresh and the bank's request budget, common to every provider.
func lifecycleFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		bank.FieldDefaultLifetime: {Type: framework.TypeDurationSecond,
			Description: "Lifetime assumed for a token whose answer has neither expires_in nor a JWT exp claim. Default 0: such an answer is an error."},
		bank.FieldBackgroundRefreshIdle: {Type: framework.TypeDurationSecond,
			Description: fmt.Sprintf("Keep renewing a token in the background before it turns stale while it was read within this long. Default %s; 0 turns background refresh off.", bank.DefaultBackgroundRefreshIdle)},
		bank.FieldMaxRequestsPerMinute: {Type: framework.TypeInt,
			Description: "Most bank requests (retries included) in any 60 seconds; 0 means no limit. Default: the provider's published budget (accelerationcloud 10), else no limit."},
		bank.FieldMaxRequestsPerDay: {Type: framework.TypeInt,
			Description: "Most bank requests (retries included) in any 24 hours; 0 means no limit. Default: the provider's published budget (accelerationcloud 60), else no limit."},
	}
}
