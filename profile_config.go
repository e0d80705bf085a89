package bankauth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// attachProfile makes a config whose provider is not built in run the
// stored profile of that name. A config without provider, or with a
// built-in one, is left alone; an unknown name is a *engine.FieldError.
func attachProfile(ctx context.Context, s logical.Storage, cfg *engine.Config) error {
	if cfg.Provider == "" {
		return nil
	}
	if _, builtin := engine.Lookup(cfg.Provider); builtin {
		return nil
	}
	p, _, err := readProfile(ctx, s, cfg.Provider)
	if err != nil {
		return err
	}
	if p == nil {
		return &engine.FieldError{Field: engine.FieldProvider, Message: fmt.Sprintf(
			"unknown provider %q (built in: %s; or write bankauth/profile/%s first)", cfg.Provider, strings.Join(engine.Names(), ", "), cfg.Provider)}
	}
	prov, err := engine.NewProfileProvider(cfg.Provider, p)
	if err != nil {
		return err
	}
	cfg.UseProvider(prov)
	return nil
}

// mergeWithProfile is mergeConfig for configs that may use a stored
// profile: the profile's declared fields, which the path schema does not
// know, are taken from the request and stored as the profile says
// (secret or not); everything else goes through mergeConfig.
func mergeWithProfile(ctx context.Context, s logical.Storage, existing *engine.Config, d *framework.FieldData) (*engine.Config, error) {
	provider := ""
	if existing != nil {
		provider = existing.Provider
	}
	if v, ok := d.Raw[engine.FieldProvider]; ok {
		provider = fmt.Sprint(v)
	}
	probe := &engine.Config{Provider: provider}
	if err := attachProfile(ctx, s, probe); err != nil {
		return nil, err
	}
	var custom engine.Provider
	taken := map[string]any{}
	if p, ok := probe.Lookup(); ok {
		if _, builtin := engine.Lookup(provider); !builtin {
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
			return nil, &engine.FieldError{Field: f.Name, Message: "must be a string"}
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
