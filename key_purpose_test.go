package bankauth

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// A key's purposes are chosen when it is made, shown on read and changed
// only through key/<name>; pins belong to client_auth keys.
func TestKeyPurposesAreSetOnTheKey(t *testing.T) {
	e := newTestEnv(t)
	for want, data := range map[string]map[string]any{
		"invalid purpose: is required: one or more of client_auth, tls, dpop, request_signing": {"type": "ec-p256"},
		"invalid purpose: each must be one of":                                                 {"type": "ec-p256", "purpose": "signing"},
		"invalid purpose: must name at least one":                                              {"type": "ec-p256", "purpose": ""},
		"invalid allowed_endpoints: allowed_endpoints and allowed_audiences apply only to keys with purpose client_auth": {
			"type": "ec-p256", "purpose": "tls", "allowed_audiences": "https://as.bank.example"},
		"invalid allowed_endpoints: each must use https": {"type": "ec-p256", "purpose": "client_auth", "allowed_endpoints": "http://as.bank.example/"},
	} {
		resp, err := e.request(t, logical.CreateOperation, "key/k", data)
		if msg := errorText(resp, err); !strings.HasPrefix(msg, want) {
			t.Errorf("got %q, want %q", msg, want)
		}
	}
	if resp, err := e.request(t, logical.ReadOperation, "key/k", nil); !isNotFound(resp, err) {
		t.Fatal("a refused write stored the key")
	}
	got := e.mustOK(t, logical.CreateOperation, "key/k", map[string]any{"type": "ec-p256", "purpose": "request_signing, client_auth",
		"allowed_endpoints": []any{"https://as1.bank.example/", "https://as2.bank.example/par"}, "allowed_audiences": "https://as1.bank.example"}).Data
	if stringify(got["purpose"]) != `["client_auth","request_signing"]` ||
		stringify(got["allowed_endpoints"]) != `["https://as1.bank.example/","https://as2.bank.example/par"]` ||
		stringify(got["allowed_audiences"]) != `["https://as1.bank.example"]` {
		t.Errorf("created %v %v %v", got["purpose"], got["allowed_endpoints"], got["allowed_audiences"])
	}
	// Taking client_auth away takes the pins with it.
	got = e.mustOK(t, logical.UpdateOperation, "key/k", map[string]any{"purpose": []any{"dpop", "tls"}}).Data
	if stringify(got["purpose"]) != `["tls","dpop"]` || stringify(got["allowed_endpoints"]) != `[]` || stringify(got["allowed_audiences"]) != `[]` {
		t.Errorf("updated %v %v %v", got["purpose"], got["allowed_endpoints"], got["allowed_audiences"])
	}
	if r := e.mustOK(t, logical.ReadOperation, "key/k", nil).Data; stringify(r["purpose"]) != `["tls","dpop"]` {
		t.Errorf("read %v", r["purpose"])
	}
}

// Each use checks the purpose: sign/ needs request_signing; a config's
// signing_key, tls_key and dpop_key need client_auth, tls and dpop; and
// dpop/<config> needs its key to still have dpop.
func TestKeysAreUsedOnlyForTheirPurposes(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/dp", map[string]any{"type": "ec-p256", "purpose": "dpop"})
	e.mustOK(t, logical.CreateOperation, "key/doc", map[string]any{"type": "ec-p256", "purpose": "request_signing"})
	resp, err := e.request(t, logical.UpdateOperation, "sign/dp", map[string]any{"format": "jws_detached", "payload": "e30="})
	if msg := errorText(resp, err); msg != `invalid name: key "dp" lacks purpose request_signing (only a writer of key/dp can add it)` {
		t.Errorf("sign/ with a dpop key: %q", msg)
	}
	e.mustOK(t, logical.UpdateOperation, "sign/doc", map[string]any{"format": "jws_detached", "payload": "e30="})

	oauth2 := map[string]any{"provider": "oauth2", "token_url": "https://as.bank.example/token", "client_id": "c", "client_secret": "s"}
	with := func(k, v string) map[string]any {
		d := map[string]any{k: v}
		for n, x := range oauth2 {
			d[n] = x
		}
		return d
	}
	for want, data := range map[string]map[string]any{
		`invalid tls_key: key "doc" lacks purpose tls`:   with("tls_key", "doc"),
		`invalid dpop_key: key "doc" lacks purpose dpop`: with("dpop_key", "doc"),
		`invalid signing_key: key "dp" lacks purpose client_auth`: {"provider": "oauth2", "token_url": "https://as.bank.example/token",
			"client_id": "c", "auth_method": "private_key_jwt", "signing_key": "dp"},
	} {
		resp, err := e.request(t, logical.CreateOperation, "config/c", data)
		if msg := errorText(resp, err); !strings.HasPrefix(msg, want) {
			t.Errorf("got %q, want %q", msg, want)
		}
	}
	e.mustOK(t, logical.CreateOperation, "config/c", with("dpop_key", "dp"))
	e.mustOK(t, logical.UpdateOperation, "key/dp", map[string]any{"purpose": "request_signing"})
	resp, err = e.request(t, logical.UpdateOperation, "dpop/c", map[string]any{"htm": "GET", "htu": "https://rs.bank.example/a"})
	if msg := errorText(resp, err); msg != `invalid dpop_key: key "dp" lacks purpose dpop (only a writer of key/dp can add it)` {
		t.Errorf("dpop/ after the key lost dpop: %q", msg)
	}
	// A token fetch for the config is refused with a 400 naming the key,
	// before any bank request, not a 500 (found by the fuzzer).
	for _, op := range []logical.Operation{logical.ReadOperation, logical.UpdateOperation} {
		resp, err = e.request(t, op, "token/c", nil)
		want := `config c cannot be used as stored: dpop_key: key "dp" lacks purpose dpop (only a writer of key/dp can add it)`
		if err != nil || !resp.IsError() || resp.Error().Error() != want {
			t.Errorf("%s token/c after the key lost dpop: %v %v, want 400 %q", op, resp, err, want)
		}
	}
}
