package bankauth

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestLeaseFalseReadHasNoLease(t *testing.T) {
	e := newTestEnv(t)
	data := emulator.ConfigData(emulator.Rakbank, e.url, emulator.DefaultCredentials())
	data["lease"] = false
	e.mustOK(t, logical.CreateOperation, "config/rak", data)
	if got := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data["lease"]; got != false {
		t.Fatalf("config read lease=%v, want false", got)
	}
	resp := e.mustOK(t, logical.ReadOperation, "token/rak", nil)
	if resp.Secret != nil {
		t.Fatalf("lease=false read has a lease: %+v", resp.Secret)
	}
	if !e.emu.TokenValid(emulator.Rakbank, resp.Data["access_token"].(string)) {
		t.Fatal("no valid token")
	}
	if in := resp.Data["expires_in"].(int64); in < 58 || in > 60 {
		t.Errorf("expires_in %d, want ~60", in)
	}
	if _, err := time.Parse(time.RFC3339, resp.Data["expires_at"].(string)); err != nil {
		t.Errorf("expires_at: %v", err)
	}
	// A forced refresh answers without a lease too; the cached read as well.
	if r := e.mustOK(t, logical.UpdateOperation, "token/rak", nil); r.Secret != nil {
		t.Error("forced refresh with lease=false has a lease")
	}
	if r := e.mustOK(t, logical.ReadOperation, "token/rak", nil); r.Secret != nil {
		t.Error("cached read with lease=false has a lease")
	}

	// An update that does not name lease keeps it; naming it switches it.
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"scope": "payments"})
	if r := e.mustOK(t, logical.ReadOperation, "token/rak", nil); r.Secret != nil {
		t.Error("update of another field turned leases back on")
	}
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"lease": "true"})
	r := e.mustOK(t, logical.ReadOperation, "token/rak", nil)
	if r.Secret == nil || r.Secret.Renewable || r.Secret.TTL < 58*time.Second {
		t.Errorf("lease=true read lease %+v", r.Secret)
	}
	if got := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data["lease"]; got != true {
		t.Errorf("config read lease=%v, want true", got)
	}
}

func TestLeaseDefaultsToTrue(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "etz", emulator.Etranzact)
	if got := e.mustOK(t, logical.ReadOperation, "config/etz", nil).Data["lease"]; got != true {
		t.Fatalf("config read lease=%v, want true", got)
	}
	if r := e.mustOK(t, logical.ReadOperation, "token/etz", nil); r.Secret == nil {
		t.Fatal("default config read has no lease")
	}
}

func TestLeaseBadValueIs400(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	before := stringify(e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data)
	resp, err := e.request(t, logical.UpdateOperation, "config/rak", map[string]any{"lease": "maybe"})
	if err != nil || !resp.IsError() || resp.Error().Error() != "invalid lease: expected a boolean" {
		t.Fatalf("lease=maybe: resp=%v err=%v, want a 400 naming lease and not quoting the value", resp, err)
	}
	if after := stringify(e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data); after != before {
		t.Fatalf("config changed by a rejected write: %s -> %s", before, after)
	}
}

func TestRestartedBackendKeepsLeaseSettingWithoutBankRequest(t *testing.T) {
	e := newTestEnv(t)
	data := emulator.ConfigData(emulator.Etranzact, e.url, emulator.DefaultCredentials())
	data["lease"] = false
	e.mustOK(t, logical.CreateOperation, "config/etz", data)
	tok := e.mustOK(t, logical.ReadOperation, "token/etz", nil).Data["access_token"]
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e.b = lb.(*backend)
	for i := 0; i < 2; i++ { // the stored token, then the cached one
		r := e.mustOK(t, logical.ReadOperation, "token/etz", nil)
		if r.Data["access_token"] != tok || r.Secret != nil {
			t.Fatalf("read %d after restart: new token or a lease (secret %+v)", i, r.Secret)
		}
	}
	if n := e.emu.Stats(emulator.Etranzact).Total; n != 1 {
		t.Fatalf("%d bank requests, want 1", n)
	}
}

// countingStorage counts the storage calls a backend makes.
type countingStorage struct {
	logical.Storage
	gets, lists atomic.Int64
}

func (s *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.gets.Add(1)
	return s.Storage.Get(ctx, key)
}

func (s *countingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	s.lists.Add(1)
	return s.Storage.List(ctx, prefix)
}

// Start-up cost must not grow with the number of configs: the backend reads
// a config only when its token is first asked for.
func TestStartupReadsNoConfig(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "etz", emulator.Etranzact)
	for i := 0; i < 1000; i++ {
		se, err := logical.StorageEntryJSON(configPrefix+fmt.Sprintf("c%d", i),
			map[string]any{"provider": "etranzact", "base_url": e.url, "settings": map[string]string{"username": "u"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.storage.Put(context.Background(), se); err != nil {
			t.Fatal(err)
		}
	}
	cs := &countingStorage{Storage: e.storage}
	conf := logical.TestBackendConfig()
	conf.StorageView = cs
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Initialize(context.Background(), &logical.InitializationRequest{Storage: cs}); err != nil {
		t.Fatal(err)
	}
	// One list, of key/: keys from an earlier release get their purposes
	// stored (key_migrate.go); a mount with no keys reads nothing more.
	if g, l := cs.gets.Load(), cs.lists.Load(); g != 0 || l != 1 {
		t.Fatalf("start-up made %d storage reads and %d lists, want none and one (key/)", g, l)
	}
	resp, err := lb.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.ReadOperation, Path: "token/etz", Storage: cs})
	if err != nil || resp.IsError() {
		t.Fatalf("first read: %v %v", resp, err)
	}
	// The mount's settings (its egress policy) are read once, by the first
	// client the mount builds.
	if g, l := cs.gets.Load(), cs.lists.Load(); g > 3 || l != 1 {
		t.Fatalf("first token read made %d storage reads and %d lists, want <= 3 (token, config, settings) and none", g, l-1)
	}
}
