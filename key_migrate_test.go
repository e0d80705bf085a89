package bankauth

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// Keys stored by an earlier release have no purposes: they get those
// their configs use them for (with the endpoints and audiences of those
// configs as pins), or request_signing; reads derive them at once, and
// the mount's initialization stores them. The configs keep working.
func TestKeysFromAnEarlierReleaseGetTheirConfigsPurposes(t *testing.T) {
	e := newTestEnv(t)
	bank := newAssertionHost(t)
	ctx := context.Background()
	for _, n := range []string{"sig", "dp", "doc"} {
		k, err := keyring.Generate(keyring.TypeECP256, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.b.writeKey(ctx, e.storage, n, k); err != nil { // as an earlier release stored it
			t.Fatal(err)
		}
	}
	for name, cfg := range map[string]string{
		"ob":  `{"provider":"oauth2","settings":{"token_url":"` + bank.URL + `/token?x=1","client_id":"tpp","auth_method":"private_key_jwt","signing_key":"sig","dpop_key":"dp"}}`,
		"ob2": `{"provider":"oauth2","settings":{"token_url":"` + bank.URL + `/v2/token","client_id":"tpp","auth_method":"private_key_jwt","signing_key":"sig","assertion_audience":"https://issuer.bank.example"}}`,
	} {
		if err := e.storage.Put(ctx, &logical.StorageEntry{Key: configPrefix + name, Value: []byte(cfg)}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][3]string{
		"sig": {`["client_auth"]`, `["` + bank.URL + `/token","` + bank.URL + `/v2/token"]`, `["` + bank.URL + `/token?x=1","https://issuer.bank.example"]`},
		"dp":  {`["dpop"]`, `[]`, `[]`},
		"doc": {`["request_signing"]`, `[]`, `[]`},
	}
	check := func(when string) {
		t.Helper()
		for n, w := range want {
			got := e.mustOK(t, logical.ReadOperation, "key/"+n, nil).Data
			if g := [3]string{stringify(got["purpose"]), stringify(got["allowed_endpoints"]), stringify(got["allowed_audiences"])}; g != w {
				t.Errorf("%s: key %s reads %v, want %v", when, n, g, w)
			}
		}
	}
	check("before initialization")
	if k, _ := loadKey(ctx, e.storage, "sig"); k.Purposes != nil {
		t.Fatal("a read stored the purposes")
	}
	if err := e.b.Initialize(ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	for n := range want {
		if k, _ := loadKey(ctx, e.storage, n); k.Purposes == nil {
			t.Errorf("initialization stored no purposes for %s", n)
		}
	}
	check("after initialization")
	for _, n := range []string{"ob", "ob2"} {
		e.mustOK(t, logical.ReadOperation, "token/"+n, nil)
	}
	if n := bank.assertions.Load(); n != 2 {
		t.Errorf("the bank got %d assertions", n)
	}
	// And the pins hold from now on.
	resp, err := e.request(t, logical.UpdateOperation, "config/ob", map[string]any{"token_url": "https://as.evil.example/token"})
	if msg := errorText(resp, err); msg == "" {
		t.Error("a migrated key's config was redirected")
	}
}
