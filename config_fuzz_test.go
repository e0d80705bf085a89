package bankauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/vault/sdk/logical"
)

// existingSecret is the client secret of the config every fuzz run starts
// with; no answer may ever show it.
const existingSecret = "existing-secret-value-7f3a"

// FuzzConfigWrite sends arbitrary JSON bodies, as Vault's HTTP layer decodes
// them, to config/<name> on a backend with in-memory storage that already
// holds a valid config and its token. Whatever the input, the answer is
// either success, with a stored config that validates and no cached token
// left, or a 400 naming a field with storage untouched; never a panic, never
// another error, never a secret in the answer.
func FuzzConfigWrite(f *testing.F) {
	for _, seed := range []struct{ name, body string }{
		{"existing", `{"scope":"payments"}`},
		{"existing", `{"client_secret":""}`},
		{"existing", `{"provider":"etranzact","username":"u","password":"p4ssw0rd-x"}`},
		{"existing", `{"oauth_metadata":{"account_id":"1"}}`},
		{"existing", `{"oauth_metadata":"[1,2]"}`},
		{"existing", `{"timeout":"90s"}`},
		{"existing", `{"timeout":36028797018963998}`},
		{"existing", `{"timeout":"500ms"}`},
		{"existing", `{"base_url":"http://bank.example"}`},
		{"existing", `{"ca_cert":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}`},
		{"existing", `{"client_secret":["s3cr3t-in-a-list"]}`},
		{"existing", `{"client_secret":{"k":"s3cr3t-in-a-map"}}`},
		{"existing", `{"password":"s3cr3t-foreign"}`},
		{"new", `{"provider":"isbank","base_url":"https://api.isbank.example","client_id":"c","client_secret":"s3cr3t-1","service_account_id":"a","service_account_secret":"s3cr3t-2"}`},
		{"new", `{"provider":"accelerationcloud","client_id":"c","client_secret":"s3cr3t-3"}`},
		{"new", `{"provider":"hsbc"}`},
		{"new", `{"provider":7,"colour":"blue"}`},
		{"new", `{}`},
		{"bad name!", `{"provider":"rakbank"}`},
	} {
		f.Add(seed.name, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		var data map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber() // as Vault's HTTP handler decodes request bodies
		if dec.Decode(&data) != nil || data == nil {
			return
		}
		ctx := context.Background()
		b, s := fuzzBackend(t)
		defer b.Cleanup(ctx)
		before := dumpStorage(t, s)

		op := logical.CreateOperation
		if cfg, _ := readConfig(ctx, s, name); cfg != nil {
			op = logical.UpdateOperation
		}
		resp, err := b.HandleRequest(ctx, &logical.Request{Operation: op, Path: "config/" + name, Data: data, Storage: s})
		answer := fmt.Sprintf("%v %v", err, resp)
		if resp != nil {
			answer += stringify(resp.Data)
		}
		for _, secret := range secretsIn(name, data) {
			if strings.Contains(answer, secret) {
				t.Fatalf("the answer shows a secret (%q): %s", secret, answer)
			}
		}
		switch {
		case errors.Is(err, logical.ErrUnsupportedPath), errors.Is(err, logical.ErrUnsupportedOperation):
			// Not a config name: config/<name> did not match, or the name is
			// empty and config/ takes only list (Vault answers 404 / 405).
			if after := dumpStorage(t, s); after != before {
				t.Fatalf("an unrouted request changed storage")
			}
		case err != nil && !errors.Is(err, logical.ErrInvalidRequest):
			t.Fatalf("error other than a 400: %v", err)
		case resp.IsError():
			if !namesAField(resp.Error().Error(), data) {
				t.Fatalf("400 names no field: %v", resp.Error())
			}
			if after := dumpStorage(t, s); after != before {
				t.Fatalf("a refused write changed storage:\nbefore %s\nafter  %s", before, after)
			}
		case err != nil:
			t.Fatalf("ErrInvalidRequest without an error response: %v", err)
		default:
			cfg, rerr := readConfig(ctx, s, name)
			if rerr != nil || cfg == nil {
				t.Fatalf("accepted write left no readable config: %v", rerr)
			}
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("accepted write stored an invalid config: %v", verr)
			}
			if tok, _ := s.Get(ctx, tokenPrefix+name); tok != nil {
				t.Fatalf("accepted write left the old token in storage")
			}
			read, rerr := b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "config/" + name, Storage: s})
			if rerr != nil || read == nil || read.IsError() {
				t.Fatalf("reading the accepted config: %v %v", rerr, read)
			}
			shown := stringify(read.Data)
			for _, secret := range append(cfg.SecretValues(), existingSecret) {
				if len(secret) >= 4 && strings.Contains(shown, secret) && !strings.Contains(nonSecretText(name, data), secret) {
					t.Fatalf("config read shows a secret: %s", shown)
				}
			}
		}
	})
}

// fuzzBackend is a backend on fresh in-memory storage holding a valid
// rakbank config named "existing" and a token for it.
func fuzzBackend(t *testing.T) (*backend, logical.Storage) {
	t.Helper()
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	allowLoopback(t, conf.StorageView)
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	b, s := lb.(*backend), conf.StorageView
	ctx := context.Background()
	resp, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.CreateOperation, Path: "config/existing", Storage: s,
		Data: map[string]any{"provider": "rakbank", "client_id": "client-1", "client_secret": existingSecret, "scope": "accounts"}})
	if err != nil || resp.IsError() {
		t.Fatalf("seeding config: %v %v", err, resp)
	}
	se, _ := logical.StorageEntryJSON(tokenPrefix+"existing", &bank.Token{AccessToken: "stored-token", TokenType: "bearer"})
	if err := s.Put(ctx, se); err != nil {
		t.Fatal(err)
	}
	return b, s
}

// dumpStorage renders every key and value in storage.
func dumpStorage(t *testing.T, s logical.Storage) string {
	t.Helper()
	ctx := context.Background()
	keys, err := logical.CollectKeys(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		se, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if se != nil {
			out = append(out, k+"="+string(se.Value))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// secretsIn lists the secrets a request carries that must not be echoed: the
// string leaves of every secret field's value (at least 4 characters, and not
// also given in a non-secret place, which an error may rightly quote), and
// the seeded config's secret.
func secretsIn(name string, data map[string]any) []string {
	out := []string{existingSecret}
	public := nonSecretText(name, data)
	fields := bank.AllFields()
	for k, v := range data {
		if f, ok := fields[k]; ok && f.Secret {
			for _, s := range leaves(v) {
				if len(s) >= 4 && !strings.Contains(public, s) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// nonSecretText is every key and every non-secret value of a request.
func nonSecretText(name string, data map[string]any) string {
	parts := []string{name}
	fields := bank.AllFields()
	for k, v := range data {
		parts = append(parts, k)
		if f, ok := fields[k]; ok && f.Secret {
			continue
		}
		parts = append(parts, leaves(v)...)
		parts = append(parts, fmt.Sprint(v))
	}
	return strings.Join(parts, "\x00")
}

// leaves lists the strings (and numbers, as text) inside a decoded JSON value.
func leaves(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case json.Number:
		return []string{v.String()}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, leaves(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range v {
			out = append(out, k)
			out = append(out, leaves(e)...)
		}
		return out
	}
	return nil
}

// namesAField reports whether a 400 message names a config field or one of
// the request's keys.
func namesAField(msg string, data map[string]any) bool {
	for k := range configFields() {
		if strings.Contains(msg, k) {
			return true
		}
	}
	for k := range data {
		if (k != "" && strings.Contains(msg, k)) || strings.Contains(msg, fmt.Sprintf("%q", k)) {
			return true
		}
	}
	return false
}
