package bankauth

import (
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/hashicorp/vault/sdk/framework"
)

// commonConfigFields are config fields that apply to every provider and are
// kept when a config changes provider: the mTLS client certificate and
// whether tokens are cached.
func commonConfigFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		engine.FieldTLSClientCert: {Type: framework.TypeString,
			Description: "PEM client certificate (chain) presented to the bank for mutual TLS. Requires tls_client_key."},
		engine.FieldTLSClientKey: {Type: framework.TypeString,
			Description:  "PEM private key of tls_client_cert (PKCS#8, PKCS#1 or EC). Write-only.",
			DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
		fieldCache: {Type: framework.TypeBool, Default: true,
			Description: "Cache the token (default). false: every read fetches a new token and nothing is stored, for banks whose tokens are single-use."},
	}
}

const fieldCache = "cache"

// copyCommonFields carries the common fields from src to dst.
func copyCommonFields(dst, src *engine.Config) {
	dst.TLSClientCert, dst.TLSClientKey = src.TLSClientCert, src.TLSClientKey
	dst.NoCache = src.NoCache
	dst.NoLease = src.NoLease
	keepTLSKey(dst, src) // key_config.go
}

// mergeCommonField applies one common field of the request; it reports
// whether key was one.
func mergeCommonField(cfg *engine.Config, key string, d *framework.FieldData) (bool, error) {
	switch key {
	case engine.FieldTLSClientCert:
		cfg.TLSClientCert = strings.TrimSpace(d.Get(key).(string))
	case engine.FieldTLSClientKey:
		cfg.TLSClientKey = strings.TrimSpace(d.Get(key).(string))
	case fieldCache:
		cfg.NoCache = !d.Get(key).(bool)
	default:
		return false, nil
	}
	return true, nil
}

// readCommonFields adds the common fields to a config read: the certificate
// is public, the key only shows whether it is set.
func readCommonFields(cfg *engine.Config, data map[string]any) {
	if cfg.TLSClientCert != "" {
		data[engine.FieldTLSClientCert] = cfg.TLSClientCert
	}
	data[engine.FieldTLSClientKey+"_set"] = cfg.TLSClientKey != ""
	data[fieldCache] = !cfg.NoCache
}
