package bankauth

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/logical"
)

// jwks/<name> answers without a Vault token, so its cost must not depend
// on whether the key exists or is public: decoding the stored key on each
// request cost 8.5 ms for a public 10-version RSA-4096 key against 1.3 ms
// for a missing one, CPU for anyone and a timing signal about keys that
// are not public. So the JWK Set of every public key is rendered when the
// key is written (writeKey, deleteKey), when another node writes it
// (invalidate), and, for keys an earlier release wrote, for all keys at
// once on a mount's first jwks read, whatever name it asks for. A read is
// then one map lookup, the same for every name. Nothing new is stored, so
// upgrades and downgrades need no migration.

// jwksCache holds the rendered JWK Set (the body jwks/<name> sends) of
// every key with public_jwks=true. Its zero value is ready to use.
type jwksCache struct {
	mu     sync.RWMutex
	loaded bool              // every stored key has been rendered
	bodies map[string][]byte // by key name; public keys only
}

// body is key name's JWK Set as JSON, or nil when nothing is published
// under that name (no key, or public_jwks=false).
func (c *jwksCache) body(ctx context.Context, s logical.Storage, name string) ([]byte, error) {
	c.mu.RLock()
	body, loaded := c.bodies[name], c.loaded
	c.mu.RUnlock()
	if loaded {
		return body, nil
	}
	if err := c.load(ctx, s); err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bodies[name], nil
}

// load renders the JWK Set of every stored key. Writes wait for it (they
// take the lock after storing), so none is lost.
func (c *jwksCache) load(ctx context.Context, s logical.Storage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		return nil
	}
	names, err := s.List(ctx, keyPrefix)
	if err != nil {
		return err
	}
	bodies := map[string][]byte{}
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			continue
		}
		k, err := storedKeyForJWKS(ctx, s, name)
		if err != nil {
			return err
		}
		if body := renderJWKS(k); body != nil {
			bodies[name] = body
		}
	}
	c.bodies, c.loaded = bodies, true
	return nil
}

// update records key name as just written on this node (k nil: deleted).
func (c *jwksCache) update(name string, k *keyring.Key) {
	body := renderJWKS(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(name, body)
}

// reload re-reads key name after another node changed it. On a storage
// failure every key is rendered again at the next read.
func (c *jwksCache) reload(ctx context.Context, s logical.Storage, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded || s == nil {
		return
	}
	k, err := storedKeyForJWKS(ctx, s, name)
	if err != nil {
		c.loaded, c.bodies = false, nil
		return
	}
	c.set(name, renderJWKS(k))
}

// set stores or drops a body; before the first load there is nothing to
// keep up to date. The caller holds the lock.
func (c *jwksCache) set(name string, body []byte) {
	switch {
	case !c.loaded:
	case body == nil:
		delete(c.bodies, name)
	default:
		c.bodies[name] = body
	}
}

// storedKeyForJWKS reads key name for rendering its JWK Set: nil when
// there is none or it cannot be decoded (it then publishes nothing); an
// error only when storage fails.
func storedKeyForJWKS(ctx context.Context, s logical.Storage, name string) (*keyring.Key, error) {
	se, err := s.Get(ctx, keyPrefix+name)
	if err != nil || se == nil {
		return nil, err
	}
	var k keyring.Key
	if se.DecodeJSON(&k) != nil || len(k.Versions) == 0 {
		return nil, nil
	}
	return &k, nil
}

// renderJWKS is the body jwks/<name> sends for k, or nil when k publishes
// nothing (nil, public_jwks=false, or a version that cannot be read).
func renderJWKS(k *keyring.Key) []byte {
	if k == nil || !k.PublicJWKS {
		return nil
	}
	set, err := k.JWKS()
	if err != nil {
		return nil
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil
	}
	return body
}
