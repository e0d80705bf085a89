package bankauth

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// keyCountingStorage counts reads of stored keys (key/<name>), each of
// which a handler would have to decode.
type keyCountingStorage struct {
	logical.Storage
	keyGets atomic.Int64
}

func (s *keyCountingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if strings.HasPrefix(key, keyPrefix) {
		s.keyGets.Add(1)
	}
	return s.Storage.Get(ctx, key)
}

// jwks/<name> needs no token, so it must cost the same whether the key
// exists, is public or not: it answers from the JWK Sets rendered when keys
// were written, and reads or decodes no stored key (issue 18: it decoded
// every published private key version on every request).
func TestJWKSReadsDecodeNoKey(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/pub", map[string]any{"type": "ec-p256", "purpose": "client_auth", "public_jwks": true})
	e.mustOK(t, logical.UpdateOperation, "key/pub/rotate", nil)
	e.mustOK(t, logical.CreateOperation, "key/hidden", map[string]any{"type": "ec-p256", "purpose": "client_auth"})
	cs := &keyCountingStorage{Storage: e.storage}
	e.storage = cs
	// A mount's first jwks read renders every key's set, whatever name it
	// asks for: once, and the same for every name.
	if resp, err := e.request(t, logical.ReadOperation, "jwks/missing", nil); !isNotFound(resp, err) {
		t.Fatalf("jwks/missing: %v %v, want 404", resp, err)
	}
	if n := cs.keyGets.Load(); n > 2 {
		t.Fatalf("the first jwks read read stored keys %d times, want each of the 2 keys once at most", n)
	}
	cs.keyGets.Store(0)
	for round := 0; round < 3; round++ {
		if set := readJWKS(t, e, "pub"); len(set.Keys) != 2 {
			t.Fatalf("jwks/pub: %d keys, want 2", len(set.Keys))
		}
		for _, name := range []string{"hidden", "missing"} {
			if resp, err := e.request(t, logical.ReadOperation, "jwks/"+name, nil); !isNotFound(resp, err) {
				t.Fatalf("jwks/%s: %v %v, want 404", name, resp, err)
			}
		}
	}
	if n := cs.keyGets.Load(); n != 0 {
		t.Fatalf("jwks reads read stored keys %d times, want none", n)
	}
}

// A key stored by an earlier release, which rendered no JWK Set when it
// wrote the key, is served all the same: the first jwks read of a mount
// renders every key's, whatever name it asks for.
func TestJWKSServesKeysFromAnEarlierRelease(t *testing.T) {
	e := newTestEnv(t)
	for name, public := range map[string]bool{"old": true, "oldhidden": false} {
		k, err := keyring.Generate(keyring.TypeECP256, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		k.PublicJWKS = public
		se, _ := logical.StorageEntryJSON(keyPrefix+name, k)
		if err := e.storage.Put(context.Background(), se); err != nil {
			t.Fatal(err)
		}
	}
	if resp, err := e.request(t, logical.ReadOperation, "jwks/oldhidden", nil); !isNotFound(resp, err) {
		t.Fatalf("jwks/oldhidden: %v %v, want 404", resp, err)
	}
	if set := readJWKS(t, e, "old"); len(set.Keys) != 1 {
		t.Fatalf("jwks/old: %+v", set)
	}
}

// Another node's key writes reach this node's JWK Sets through Vault's
// invalidation of key/<name>.
func TestJWKSFollowsOtherNodesWrites(t *testing.T) {
	ctx := context.Background()
	active := newTestEnv(t)
	active.mustOK(t, logical.CreateOperation, "key/ob", map[string]any{"type": "ec-p256", "purpose": "client_auth", "public_jwks": true})
	standby := replicaOf(t, active, consts.ReplicationPerformanceStandby)
	if set := readJWKS(t, standby, "ob"); len(set.Keys) != 1 {
		t.Fatalf("standby: %+v", set)
	}
	active.mustOK(t, logical.UpdateOperation, "key/ob/rotate", nil)
	standby.b.invalidate(ctx, keyPrefix+"ob")
	if set := readJWKS(t, standby, "ob"); len(set.Keys) != 2 {
		t.Fatalf("standby after a rotation elsewhere: %d keys, want 2", len(set.Keys))
	}
	active.mustOK(t, logical.UpdateOperation, "key/ob", map[string]any{"public_jwks": false})
	standby.b.invalidate(ctx, keyPrefix+"ob")
	if resp, err := standby.request(t, logical.ReadOperation, "jwks/ob", nil); !isNotFound(resp, err) {
		t.Fatal("standby publishes a key made private elsewhere")
	}
	active.mustOK(t, logical.UpdateOperation, "key/ob", map[string]any{"public_jwks": true})
	standby.b.invalidate(ctx, keyPrefix+"ob")
	readJWKS(t, standby, "ob")
	active.mustOK(t, logical.DeleteOperation, "key/ob", nil)
	standby.b.invalidate(ctx, keyPrefix+"ob")
	for _, e := range []*testEnv{active, standby} {
		if resp, err := e.request(t, logical.ReadOperation, "jwks/ob", nil); !isNotFound(resp, err) {
			t.Fatal("a deleted key is still published")
		}
	}
}
