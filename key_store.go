package bankauth

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// keyPrefix is where signing keys are stored, seal-wrapped (backend.go).
const keyPrefix = "key/"

// keyState is the backend's state for signing keys: per-name locks that
// order writes to one key, and the clock keys and signatures are dated by.
// Its zero value is ready to use.
type keyState struct {
	once  sync.Once
	locks []*locksutil.LockEntry
	now   func() time.Time // nil means time.Now; tests set a fake clock
	// configWritten, when set (tests), runs inside a config write after its
	// keys are resolved and checked, before the config is stored.
	configWritten func()
}

// lock returns the lock that orders writes to key name.
func (s *keyState) lock(name string) *locksutil.LockEntry {
	s.once.Do(func() { s.locks = locksutil.CreateLocks() })
	return locksutil.LockForKey(s.locks, name)
}

// rlockKeys takes the read side of the locks of the keys named, each lock
// once and in one fixed order (so two writers cannot deadlock), and
// returns what releases them. A config write holds it while it checks and
// stores a config naming those keys, so a key delete or a change of a
// key's purposes or pins (the write side) cannot happen in between.
func (s *keyState) rlockKeys(names []string) (unlock func()) {
	s.once.Do(func() { s.locks = locksutil.CreateLocks() })
	locks := locksutil.LocksForKeys(s.locks, names)
	for _, l := range locks {
		l.RLock()
	}
	return func() {
		for i := len(locks) - 1; i >= 0; i-- {
			locks[i].RUnlock()
		}
	}
}

// keyNames lists the keys a config's signing_key, tls_key and dpop_key
// name.
func keyNames(cfg *bank.Config) []string {
	var out []string
	for _, f := range keyFields {
		if n := cfg.Settings[f]; n != "" {
			out = append(out, n)
		}
	}
	return out
}

func (s *keyState) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// existingKey reads key name for a path that needs it to exist: a missing
// key is a 400 naming it (resp), a storage failure an error.
func existingKey(ctx context.Context, s logical.Storage, name string) (k *keyring.Key, resp *logical.Response, err error) {
	if k, err = readKey(ctx, s, name); err != nil || k != nil {
		return k, nil, err
	}
	return nil, logical.ErrorResponse("invalid name: there is no key %q; write key/%s type=... first", name, name), nil
}

// readKey loads a stored key; nil when there is none. A key stored by an
// earlier release, without purposes, gets those its configs use it for
// (key_migrate.go), in memory until the active node stores them. Its
// errors never carry the stored bytes.
func readKey(ctx context.Context, s logical.Storage, name string) (*keyring.Key, error) {
	k, err := loadKey(ctx, s, name)
	if err != nil || k == nil || k.Purposes != nil {
		return k, err
	}
	if k.Uses, err = legacyUses(ctx, s, name); err != nil {
		return nil, err
	}
	return k, nil
}

// loadKey loads a stored key as it is stored; nil when there is none.
func loadKey(ctx context.Context, s logical.Storage, name string) (*keyring.Key, error) {
	se, err := s.Get(ctx, keyPrefix+name)
	if err != nil || se == nil {
		return nil, err
	}
	var k keyring.Key
	if err := se.DecodeJSON(&k); err != nil || len(k.Versions) == 0 {
		return nil, fmt.Errorf("stored key %q cannot be decoded", name)
	}
	return &k, nil
}

// writeKey stores a key and renders its JWK Set for jwks/<name>.
func (b *backend) writeKey(ctx context.Context, s logical.Storage, name string, k *keyring.Key) error {
	se, err := logical.StorageEntryJSON(keyPrefix+name, k)
	if err != nil {
		return fmt.Errorf("key %q cannot be encoded", name)
	}
	if err := s.Put(ctx, se); err != nil {
		return err
	}
	b.jwks.update(name, k)
	return nil
}

// deleteKey removes a stored key and its JWK Set.
func (b *backend) deleteKey(ctx context.Context, s logical.Storage, name string) error {
	if err := s.Delete(ctx, keyPrefix+name); err != nil {
		return err
	}
	b.jwks.update(name, nil)
	return nil
}

// keyFields are the config fields that name a key.
var keyFields = []string{bank.FieldSigningKey, bank.FieldTLSKey, bank.FieldDPoPKey}

// configsUsingKey lists the configs whose signing_key, tls_key or dpop_key
// names key, in name order.
func (b *backend) configsUsingKey(ctx context.Context, s logical.Storage, key string) ([]string, error) {
	names, err := s.List(ctx, configPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		cfg, err := readStoredConfig(ctx, s, n)
		if err != nil {
			return nil, err
		}
		if cfg == nil {
			continue
		}
		for _, f := range keyFields {
			if cfg.Settings[f] == key {
				out = append(out, n)
				break
			}
		}
	}
	return out, nil
}
