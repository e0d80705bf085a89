package bankauth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The merge of a config write: the request's fields applied to the stored
// config (an update changes only the fields it names).

// mergeConfig applies the request's fields to a copy of existing (nil when
// creating).
func mergeConfig(existing *bank.Config, d *framework.FieldData) (*bank.Config, error) {
	cfg := &bank.Config{Settings: map[string]string{}, Secrets: map[string]string{}}
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
	if p, ok := d.GetOk(bank.FieldProvider); ok && p.(string) != cfg.Provider {
		prev := cfg
		cfg = &bank.Config{Provider: p.(string), BaseURL: cfg.BaseURL, CACert: cfg.CACert, Timeout: cfg.Timeout,
			Settings: map[string]string{}, Secrets: map[string]string{}, Lifecycle: cfg.Lifecycle}
		copyCommonFields(cfg, prev)
	}
	provFields := bank.AllFields()
	for key := range d.Raw {
		switch key {
		case "name", bank.FieldProvider:
		case bank.FieldBaseURL:
			cfg.BaseURL = strings.TrimRight(strings.TrimSpace(d.Get(key).(string)), "/")
		case bank.FieldCACert:
			cfg.CACert = strings.TrimSpace(d.Get(key).(string))
		case bank.FieldTimeout:
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
				return nil, &bank.FieldError{Field: key, Message: "unknown field"}
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
		return nil, &bank.FieldError{Field: fieldOAuthMetadata, Message: `must be a JSON object, e.g. {"account_id":"0188000049916"}`}
	}
	return md, nil
}

// copyCommonFields carries the common fields from src to dst.
func copyCommonFields(dst, src *bank.Config) {
	dst.TLSClientCert, dst.TLSClientKey = src.TLSClientCert, src.TLSClientKey
	dst.NoCache = src.NoCache
	dst.NoLease = src.NoLease
	keepTLSKey(dst, src) // key_config.go
}

// mergeCommonField applies one common field of the request; it reports
// whether key was one.
func mergeCommonField(cfg *bank.Config, key string, d *framework.FieldData) (bool, error) {
	switch key {
	case bank.FieldTLSClientCert:
		cfg.TLSClientCert = strings.TrimSpace(d.Get(key).(string))
	case bank.FieldTLSClientKey:
		cfg.TLSClientKey = strings.TrimSpace(d.Get(key).(string))
	case fieldCache:
		cfg.NoCache = !d.Get(key).(bool)
	default:
		return false, nil
	}
	return true, nil
}

// mergeLifecycle applies a lifecycle field from the request; false if key is
// not one.
func mergeLifecycle(l *bank.Lifecycle, key string, d *framework.FieldData) bool {
	switch key {
	case bank.FieldDefaultLifetime:
		l.DefaultLifetime = time.Duration(d.Get(key).(int)) * time.Second
	case bank.FieldBackgroundRefreshIdle:
		v := time.Duration(d.Get(key).(int)) * time.Second
		l.BackgroundRefreshIdle = &v
	case bank.FieldMaxRequestsPerMinute:
		v := d.Get(key).(int)
		l.MaxRequestsPerMinute = &v
	case bank.FieldMaxRequestsPerDay:
		v := d.Get(key).(int)
		l.MaxRequestsPerDay = &v
	default:
		return false
	}
	return true
}

// mergeWithProfile is mergeConfig for configs that may use a stored
// profile: the profile's declared fields, which the path schema does not
// know, are taken from the request and stored as the profile says
// (secret or not); everything else goes through mergeConfig.
func mergeWithProfile(ctx context.Context, s logical.Storage, existing *bank.Config, d *framework.FieldData) (*bank.Config, error) {
	provider := ""
	if existing != nil {
		provider = existing.Provider
	}
	if v, ok := d.Raw[bank.FieldProvider]; ok {
		provider = fmt.Sprint(v)
	}
	probe := &bank.Config{Provider: provider}
	if err := attachProfile(ctx, s, probe); err != nil {
		return nil, err
	}
	var custom bank.Provider
	taken := map[string]any{}
	if p, ok := probe.Lookup(); ok {
		if _, builtin := bank.Lookup(provider); !builtin {
			custom = p
			for _, f := range p.Fields() {
				if v, ok := d.Raw[f.Name]; ok && f.Name != fieldOAuthMetadata {
					taken[f.Name] = v
					delete(d.Raw, f.Name)
				}
			}
		}
	}
	cfg, err := mergeConfig(existing, d)
	if err != nil {
		return nil, err
	}
	if custom == nil {
		return cfg, nil
	}
	cfg.UseProvider(custom)
	for _, f := range custom.Fields() {
		v, ok := taken[f.Name]
		if !ok {
			continue
		}
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case nil:
		case bool, json.Number, int, int64, float64:
			s = fmt.Sprint(x)
		default:
			// Never echo the value: it may be a secret.
			return nil, &bank.FieldError{Field: f.Name, Message: "must be a string"}
		}
		target, other := cfg.Settings, cfg.Secrets
		if f.Secret {
			target, other = cfg.Secrets, cfg.Settings
		}
		delete(other, f.Name)
		if s != "" {
			target[f.Name] = s
		} else {
			delete(target, f.Name)
		}
	}
	return cfg, nil
}
