package bankauth

import (
	"context"
	"sync"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestCacheFalseFetchesEveryReadAndStoresNothing(t *testing.T) {
	e := newTestEnv(t)
	data := emulator.ConfigData(emulator.AccelerationCloud, e.url, emulator.DefaultCredentials())
	data["cache"] = false
	e.mustOK(t, logical.CreateOperation, "config/ac", data)
	if got := e.mustOK(t, logical.ReadOperation, "config/ac", nil).Data["cache"]; got != false {
		t.Fatalf("config read cache=%v", got)
	}
	const readers = 8
	var wg sync.WaitGroup
	tokens := make([]string, readers)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := e.request(t, logical.ReadOperation, "token/ac", nil); err == nil && !resp.IsError() {
				tokens[i] = resp.Data["access_token"].(string)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, tok := range tokens {
		if tok == "" || seen[tok] || !e.emu.TokenValid(emulator.AccelerationCloud, tok) {
			t.Fatalf("readers did not each get their own valid token: %q", tokens)
		}
		seen[tok] = true
	}
	forced := e.mustOK(t, logical.UpdateOperation, "token/ac", nil).Data["access_token"].(string)
	if seen[forced] {
		t.Fatal("forced refresh returned an old token")
	}
	if st := e.emu.Stats(emulator.AccelerationCloud); st.Logins != readers+1 {
		t.Fatalf("%d bank logins for %d reads, want one each", st.Logins, readers+1)
	}
	if se, _ := e.storage.Get(context.Background(), tokenPrefix+"ac"); se != nil {
		t.Fatal("an uncached token was stored")
	}
	// Back to cache=true: reads share one token again.
	e.mustOK(t, logical.UpdateOperation, "config/ac", map[string]any{"cache": true})
	a := e.mustOK(t, logical.ReadOperation, "token/ac", nil).Data["access_token"]
	if b := e.mustOK(t, logical.ReadOperation, "token/ac", nil).Data["access_token"]; a != b {
		t.Fatal("cache=true does not cache")
	}
}

// A stored token obtained for another scope or oauth_metadata is not
// served, even when nothing deleted it (here: a config rewritten straight
// into storage, as an interrupted write or a restored snapshot leaves it).
func TestStoredTokenIsKeyedToItsConfig(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	first := e.mustOK(t, logical.ReadOperation, "token/rak", nil).Data
	ctx := context.Background()
	for i, change := range []func(*bank.Config){
		func(c *bank.Config) { c.Settings["scope"] = "payments" },
		func(c *bank.Config) { c.OAuthMetadata = map[string]any{"account_id": "0188000049916"} },
	} {
		cfg, err := readConfig(ctx, e.storage, "rak")
		if err != nil {
			t.Fatal(err)
		}
		change(cfg)
		se, _ := logical.StorageEntryJSON(configPrefix+"rak", cfg)
		if err := e.storage.Put(ctx, se); err != nil {
			t.Fatal(err)
		}
		// A restart: the new backend has only storage.
		conf := logical.TestBackendConfig()
		conf.StorageView = e.storage
		lb, err := Factory(ctx, conf)
		if err != nil {
			t.Fatal(err)
		}
		e.b = lb.(*backend)
		got := e.mustOK(t, logical.ReadOperation, "token/rak", nil).Data
		if got["access_token"] == first["access_token"] || e.emu.Stats(emulator.Rakbank).Logins != i+2 {
			t.Fatalf("change %d: token obtained for the old config served again", i)
		}
		first = got
	}
	last, _ := e.emu.LastRequest(emulator.Rakbank)
	if string(last.Body) != `{"grant_type":"client_credentials","scope":"payments","oauth_metadata":{"account_id":"0188000049916"}}` {
		t.Errorf("bank got %s", last.Body)
	}
	// Unchanged config: the stored token survives a restart as before.
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	lb, _ := Factory(ctx, conf)
	e.b = lb.(*backend)
	if got := e.mustOK(t, logical.ReadOperation, "token/rak", nil).Data; got["access_token"] != first["access_token"] {
		t.Fatal("stored token of an unchanged config not served after restart")
	}
}
