package bankauth

import (
	"context"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/hashicorp/vault/sdk/logical"
)

// readTokenChecked reads the stored token of name, and discards it unless
// it was obtained for the config as it now is (its ConfigKey): a token
// obtained with another scope, oauth_metadata, client or endpoint is never
// served, whatever left it in storage (a write interrupted between storing
// the config and deleting the token, a restored snapshot). Only cold loads
// come here; the hot path reads memory.
func (b *backend) readTokenChecked(ctx context.Context, s logical.Storage, name string) (*engine.Token, error) {
	tok, err := readToken(ctx, s, name)
	if err != nil || tok == nil {
		return tok, err
	}
	cfg, err := readConfig(ctx, s, name)
	if err != nil || cfg == nil {
		return nil, err
	}
	if err := attachProfile(ctx, s, cfg); err != nil {
		return nil, nil
	}
	if tok.ConfigKey != cfg.CacheKey() {
		b.Logger().Info("stored token was obtained for another version of the config; not serving it", "config", name)
		return nil, nil
	}
	return tok, nil
}

// obtainUncached serves configs with cache=false: every call fetches a new
// token, in parallel (each reader needs its own single-use token), and
// nothing is kept in memory or storage. handled is false for cached
// configs, which take the usual path.
func (b *backend) obtainUncached(ctx context.Context, s logical.Storage, name string, e *entry) (tok *engine.Token, handled bool, err error) {
	lc := e.loaded.Load()
	if lc == nil {
		if err := e.acquire(ctx); err != nil {
			return nil, true, err
		}
		lc, err = b.config(ctx, s, name, e)
		e.release()
		if err != nil {
			return nil, true, err
		}
	}
	if !lc.cfg.NoCache {
		return nil, false, nil
	}
	tok, err = lc.client.Fetch(ctx, nil)
	return tok, true, err
}
