package bankauth

import (
	"context"
	"slices"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// keyUseFields are key/<name>'s fields for purposes and pins. Only a
// writer of key/<name> sets them; configs can only use what they allow.
func keyUseFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		bank.FieldPurpose: {Type: framework.TypeCommaStringSlice,
			Description: "What the key may be used for, one or more of " + strings.Join(bank.Purposes, ", ") +
				" (client assertions as a config's signing_key; mutual TLS as tls_key; DPoP proofs as dpop_key and dpop/<config>; sign/<key>). Required on create."},
		bank.FieldAllowedEndpoints: {Type: framework.TypeCommaStringSlice,
			Description: "client_auth keys: URL prefixes (e.g. https://as.bank.example/) of the token endpoints the key's client assertions may be sent to; matched on scheme, host, port and path prefix. Required before a config may use the key as signing_key."},
		bank.FieldAllowedAudiences: {Type: framework.TypeCommaStringSlice,
			Description: "client_auth keys: the exact aud values the key's client assertions may carry (e.g. the bank's issuer). Required before a config may use the key as signing_key."},
	}
}

// applyKeyUse sets the purposes and pins a key write carries. creating
// requires purpose. nil: the key may be stored.
func applyKeyUse(k *keyring.Key, d *framework.FieldData, creating bool) *logical.Response {
	v, ok := d.GetOk(bank.FieldPurpose)
	switch {
	case ok:
		ps, resp := parsePurposes(v.([]string))
		if resp != nil {
			return resp
		}
		k.Purposes = ps
	case creating:
		return logical.ErrorResponse("invalid purpose: is required: one or more of %s, comma-separated or a list", strings.Join(bank.Purposes, ", "))
	}
	pinsSent := false
	for _, f := range []struct {
		field string
		dst   *[]string
		check func(string) error
	}{
		{bank.FieldAllowedEndpoints, &k.AllowedEndpoints, bank.ValidateAllowedEndpoint},
		{bank.FieldAllowedAudiences, &k.AllowedAudiences, nil},
	} {
		v, ok := d.GetOk(f.field)
		if !ok {
			continue
		}
		pinsSent = true
		var list []string
		for _, s := range v.([]string) {
			if s = strings.TrimSpace(s); s == "" || slices.Contains(list, s) {
				continue
			}
			if f.check != nil {
				if err := f.check(s); err != nil {
					return configErrorResponse(err)
				}
			}
			list = append(list, s)
		}
		*f.dst = list
	}
	if !k.Has(bank.PurposeClientAuth) && (len(k.AllowedEndpoints) > 0 || len(k.AllowedAudiences) > 0) {
		if pinsSent {
			return logical.ErrorResponse("invalid allowed_endpoints: allowed_endpoints and allowed_audiences apply only to keys with purpose client_auth")
		}
		k.AllowedEndpoints, k.AllowedAudiences = nil, nil // client_auth was taken away
	}
	return nil
}

// parsePurposes checks and orders a purpose list.
func parsePurposes(in []string) ([]string, *logical.Response) {
	var out []string
	for _, p := range in {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(bank.Purposes, p) {
			return nil, logical.ErrorResponse("invalid purpose: each must be one of %s", strings.Join(bank.Purposes, ", "))
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, logical.ErrorResponse("invalid purpose: must name at least one of %s", strings.Join(bank.Purposes, ", "))
	}
	var ordered []string
	for _, p := range bank.Purposes {
		if slices.Contains(out, p) {
			ordered = append(ordered, p)
		}
	}
	return ordered, nil
}

// configErrorResponse is the 400 of a *bank.FieldError.
func configErrorResponse(err error) *logical.Response {
	resp, _ := configError(err)
	if resp == nil {
		resp = logical.ErrorResponse("%s", err.Error())
	}
	return resp
}

// strandedConfigs lists the configs naming key name that its stored
// purposes or pins no longer allow: their fetches fail, naming the key,
// until the key or the config changes.
func (b *backend) strandedConfigs(ctx context.Context, s logical.Storage, name string) ([]string, error) {
	users, err := b.configsUsingKey(ctx, s, name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range users {
		cfg, err := readConfigWithProfile(ctx, s, u)
		if err != nil {
			return nil, err
		}
		if cfg != nil && cfg.Validate() != nil {
			out = append(out, u)
		}
	}
	return out, nil
}

// keyUseData is what a key read shows of its purposes and pins.
func keyUseData(k *keyring.Key, data map[string]any) {
	data[bank.FieldPurpose] = nonNil(k.Purposes)
	data[bank.FieldAllowedEndpoints] = nonNil(k.AllowedEndpoints)
	data[bank.FieldAllowedAudiences] = nonNil(k.AllowedAudiences)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// withKeyUseFields adds keyUseFields to a path's fields.
func withKeyUseFields(fields map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	for n, f := range keyUseFields() {
		fields[n] = f
	}
	return fields
}
