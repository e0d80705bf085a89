package bankauth

import (
	"bytes"
	"context"
	"fmt"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/hashicorp/vault/sdk/logical"
)

// The issuer's metadata of an authorization_code config is fetched again
// by the first consent request (begin, callback, refresh, revocation) that
// finds it older than metadataMaxAge. A refresh that keeps every endpoint
// on its host is applied; one that would move an endpoint to another host
// (fapi.MovedEndpoints: codes, assertions and tokens would go somewhere
// new) is held back, and config and status reads name the endpoints in
// metadata_pending_change until an operator rewrites the config. A refresh
// that fails, or whose endpoints the signing key's pins or the FAPI 2.0
// profile refuse, leaves the metadata in use as it is and shows why in
// metadata_refresh_error. Endpoints set by hand never change.

// refreshAuthServer fetches cfg's metadata again when it is due and
// answers the config to use: cfg itself, or the config as stored after
// the refresh. cfg is name's config with its keys (readConfig). It runs
// only where storage is writable (the active node); elsewhere the
// metadata in use serves until the active node refreshes it.
func (b *backend) refreshAuthServer(ctx context.Context, s logical.Storage, name string, cfg *bank.Config) (*bank.Config, error) {
	st, err := loadAuthServer(cfg)
	if err != nil || !st.due(b.clock.Now()) || b.storageReadOnly() {
		return cfg, nil // a config without metadata is reported by the caller
	}
	err = b.broker.Change(ctx, name, func() error {
		stored, err := readConfig(ctx, s, name)
		if err != nil || stored == nil || !bytes.Equal(stored.AuthServer, cfg.AuthServer) {
			return err // rewritten or refreshed meanwhile: use what is stored
		}
		if err := b.refreshStoredAuthServer(ctx, s, name, stored, st); err != nil {
			return err
		}
		se, err := logical.StorageEntryJSON(configPrefix+name, stored)
		if err != nil {
			return err
		}
		return s.Put(ctx, se)
	})
	if err != nil {
		return nil, err
	}
	return readConfig(ctx, s, name)
}

// refreshStoredAuthServer fetches the issuer's metadata and records the
// outcome in cfg (the stored config, changed in place): the new metadata
// applied, a held-back change, or a refresh error.
func (b *backend) refreshStoredAuthServer(ctx context.Context, s logical.Storage, name string, cfg *bank.Config, st *authServerState) error {
	now := b.clock.Now()
	st.RefreshTriedAt = now
	hc, release, err := b.authServerHTTP(ctx, s, cfg)
	if err != nil {
		return err
	}
	fresh, err := fapi.Discover(ctx, hc, cfg.Settings[bank.FieldIssuer], now)
	release()
	if err != nil {
		st.RefreshError = "metadata refresh failed: " + err.Error()
		b.Logger().Warn("issuer metadata refresh failed; the metadata in use keeps serving", "config", name, "error", err.Error())
		return st.store(cfg)
	}
	overrideByHand(fresh, cfg, st.ByHand)
	st.CheckedAt, st.RefreshError, st.PendingChange = now, "", nil
	if moves := fapi.MovedEndpoints(&st.Metadata, fresh); len(moves) > 0 {
		for _, m := range moves {
			st.PendingChange = append(st.PendingChange, m.String())
		}
		b.Logger().Warn("issuer metadata moves endpoints to another host: not applied until an operator rewrites the config",
			"config", name, "moves", fmt.Sprint(st.PendingChange))
		return st.store(cfg)
	}
	if why := b.refreshRefused(ctx, s, cfg, fresh); why != "" {
		st.RefreshError = "refreshed metadata not applied: " + why
		b.Logger().Warn("issuer metadata refresh not applied", "config", name, "reason", why)
		return st.store(cfg)
	}
	candidate := *cfg
	candidate.Settings = make(map[string]string, len(cfg.Settings))
	for k, v := range cfg.Settings {
		candidate.Settings[k] = v
	}
	applyEndpoints(&candidate, fresh)
	if err := candidate.Validate(); err != nil { // the signing key's pins, as for a config write
		st.RefreshError = "refreshed metadata not applied: " + err.Error()
		b.Logger().Warn("issuer metadata refresh not applied", "config", name, "reason", err.Error())
		return st.store(cfg)
	}
	st.Metadata = *fresh
	*cfg = candidate
	b.Logger().Debug("issuer metadata refreshed", "config", name)
	return st.store(cfg)
}

// refreshRefused is why refreshed metadata cannot serve cfg, or "": with
// fapi=2.0, a FAPI 2.0 rule it breaks (no PAR endpoint among them). A
// refresh that drops the PAR endpoint of a config without fapi is held back
// as an endpoint change (MovedEndpoints), not applied.
func (b *backend) refreshRefused(ctx context.Context, s logical.Storage, cfg *bank.Config, m *fapi.Metadata) string {
	if cfg.Settings[bank.FieldFAPI] != bank.FAPI2 {
		return ""
	}
	cc, err := fapiClientConfig(ctx, s, cfg)
	if err != nil {
		return "the config's keys cannot be read"
	}
	if err := fapi.CheckFAPI2(m, cc); err != nil {
		return err.Error()
	}
	return ""
}
