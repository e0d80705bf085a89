package bankauth

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/logical"
)

// Keys stored by a release before purposes and pins existed carry none.
// Such a key gets the purposes its configs use it for (signing_key:
// client_auth, with the endpoints and audiences of those configs'
// assertions as pins; tls_key: tls; dpop_key: dpop), or request_signing
// when no config names it. The active node stores them when the mount is
// initialized; until then (and on a standby) reads derive them in memory.

// legacyUses derives the purposes and pins of key name from the configs
// that name it.
func legacyUses(ctx context.Context, s logical.Storage, name string) (keyring.Uses, error) {
	var u keyring.Uses
	names, err := s.List(ctx, configPrefix)
	if err != nil {
		return u, err
	}
	sort.Strings(names)
	has := map[string]bool{}
	add := func(list *[]string, v string) {
		if v != "" && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	for _, n := range names {
		cfg, err := readStoredConfig(ctx, s, n)
		if err != nil {
			return u, err
		}
		if cfg == nil {
			continue
		}
		if cfg.Settings[bank.FieldTLSKey] == name {
			has[bank.PurposeTLS] = true
		}
		if cfg.Settings[bank.FieldDPoPKey] == name {
			has[bank.PurposeDPoP] = true
		}
		if cfg.Settings[bank.FieldSigningKey] != name {
			continue
		}
		has[bank.PurposeClientAuth] = true
		if attachProfile(ctx, s, cfg) != nil {
			continue // a config whose profile is gone sends nothing
		}
		for _, t := range cfg.AssertionTargets() {
			endpoint, _, _ := strings.Cut(t.Endpoint, "?")
			add(&u.AllowedEndpoints, endpoint)
			add(&u.AllowedAudiences, t.Audience)
		}
	}
	for _, p := range bank.Purposes {
		if has[p] {
			u.Purposes = append(u.Purposes, p)
		}
	}
	if len(u.Purposes) == 0 {
		u.Purposes = []string{bank.PurposeRequestSigning}
	}
	return u, nil
}

// initialize runs when Vault mounts or reloads the plugin: on the active
// node it stores the purposes and pins of keys from an earlier release.
func (b *backend) initialize(ctx context.Context, req *logical.InitializationRequest) error {
	if b.storageReadOnly() {
		return nil
	}
	if err := b.migrateKeys(ctx, req.Storage); err != nil {
		// Not fatal: reads derive the same purposes in memory meanwhile.
		b.Logger().Warn("cannot store the purposes of keys from an earlier release", "error", err)
	}
	return nil
}

// migrateKeys stores, under each key's lock, the derived purposes and pins
// of every key stored without purposes.
func (b *backend) migrateKeys(ctx context.Context, s logical.Storage) error {
	names, err := s.List(ctx, keyPrefix)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := b.migrateKey(ctx, s, n); err != nil {
			return err
		}
	}
	return nil
}

func (b *backend) migrateKey(ctx context.Context, s logical.Storage, name string) error {
	lock := b.keys.lock(name)
	lock.Lock()
	defer lock.Unlock()
	k, err := loadKey(ctx, s, name)
	if err != nil || k == nil || k.Purposes != nil {
		return err
	}
	if k.Uses, err = legacyUses(ctx, s, name); err != nil {
		return err
	}
	b.Logger().Info("key from an earlier release given the purposes its configs use it for",
		"key", name, "purposes", strings.Join(k.Purposes, ","))
	return b.writeKey(ctx, s, name, k)
}
