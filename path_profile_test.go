package bankauth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/fakebank"
	"github.com/hashicorp/vault/sdk/logical"
)

// rawSecret has '/', '+' and '=' like Interswitch's sample: a client that
// form-encodes Basic credentials is refused.
const rawSecret = "isw/secret+key=="

func interswitchProfile(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("docs/profiles/interswitch.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

func TestProfileLifecycleAndCustomProvider(t *testing.T) {
	e := newTestEnv(t)
	bank := fakebank.NewInterswitch("IKIA-test", rawSecret, time.Hour)
	srv := httptest.NewServer(bank)
	t.Cleanup(srv.Close)

	e.mustOK(t, logical.CreateOperation, "profile/interswitch", map[string]any{"profile": interswitchProfile(t)})
	got := e.mustOK(t, logical.ReadOperation, "profile/interswitch", nil).Data
	if got["built_in"] != false || !strings.Contains(stringify(got["profile"]), "/passport/oauth/token") {
		t.Fatalf("profile read %v", got)
	}
	list := e.mustOK(t, logical.ListOperation, "profile/", nil).Data["keys"].([]string)
	if strings.Join(list, ",") != "accelerationcloud,etranzact,interswitch,isbank,rakbank" {
		t.Errorf("list %v", list)
	}

	// A config missing a field the profile requires, or setting one it does
	// not declare, is refused naming the field.
	for field, data := range map[string]map[string]any{
		"client_secret": {"provider": "interswitch", "base_url": srv.URL, "client_id": "IKIA-test"},
		"user_id":       {"provider": "interswitch", "base_url": srv.URL, "client_id": "IKIA-test", "client_secret": rawSecret, "user_id": "u"},
	} {
		resp, err := e.request(t, logical.CreateOperation, "config/isw", data)
		if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "invalid "+field) {
			t.Errorf("want a 400 naming %s, got %v %v", field, resp, err)
		}
	}
	e.mustOK(t, logical.CreateOperation, "config/isw", map[string]any{
		"provider": "interswitch", "base_url": srv.URL, "client_id": "IKIA-test", "client_secret": rawSecret})
	cfg := e.mustOK(t, logical.ReadOperation, "config/isw", nil).Data
	if cfg["client_secret_set"] != true || cfg["scope"] != "profile" || strings.Contains(stringify(cfg), rawSecret) {
		t.Errorf("config read %v", cfg)
	}
	tok := e.mustOK(t, logical.ReadOperation, "token/isw", nil)
	if at := tok.Data["access_token"].(string); !bank.Valid(at) || tok.Data["scope"] != "profile" || tok.Secret.TTL < 59*time.Minute {
		t.Fatalf("token %v ttl %s", tok.Data, tok.Secret.TTL)
	}

	// In use: no delete, and a rewrite must keep the config valid.
	resp, err := e.request(t, logical.DeleteOperation, "profile/interswitch", nil)
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), `profile "interswitch" is in use by config isw`) {
		t.Fatalf("delete in use: %v %v", resp, err)
	}
	stricter := strings.Replace(interswitchProfile(t), `"fields": [`, `"fields": [{"name": "terminal_id", "required": true},`, 1)
	resp, err = e.request(t, logical.UpdateOperation, "profile/interswitch", map[string]any{"profile": stricter})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), `config "isw", which uses it, would be invalid: terminal_id: is required`) {
		t.Fatalf("stricter rewrite: %v %v", resp, err)
	}
	// A compatible rewrite drops the token: the next read asks the bank.
	calls := bank.Calls()
	e.mustOK(t, logical.ReadOperation, "token/isw", nil)
	if bank.Calls() != calls {
		t.Fatal("cached token not served")
	}
	e.mustOK(t, logical.UpdateOperation, "profile/interswitch", map[string]any{"profile": strings.Replace(interswitchProfile(t), `"default": "profile"`, `"default": "profile payments"`, 1)})
	if got := e.mustOK(t, logical.ReadOperation, "token/isw", nil).Data; bank.Calls() != calls+1 || got["scope"] != "profile payments" {
		t.Fatalf("after a profile rewrite: %d calls, scope %v", bank.Calls()-calls, got["scope"])
	}
	e.mustOK(t, logical.DeleteOperation, "config/isw", nil)
	e.mustOK(t, logical.DeleteOperation, "profile/interswitch", nil)
	if resp, err := e.request(t, logical.ReadOperation, "profile/interswitch", nil); !isNotFound(resp, err) {
		t.Fatalf("deleted profile still reads: %v", resp.Data)
	}
	resp, err = e.request(t, logical.CreateOperation, "config/isw", map[string]any{"provider": "interswitch", "base_url": srv.URL})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "names no provider (built in: accelerationcloud, etranzact, isbank, oauth2, rakbank; or write bankauth/profile/<provider> first)") {
		t.Fatalf("config naming a missing profile: %v %v", resp, err)
	}
}

func TestProfileWriteIsValidated(t *testing.T) {
	e := newTestEnv(t)
	cases := []struct {
		name, doc, want string
	}{
		{"bank", `{"steps":[{"name":"token","method":"DELETE","path":"/t"}]}`, "invalid profile: steps[0].method: must be GET, POST, PUT or PATCH"},
		{"bank", `not json`, "invalid profile: not a valid profile document"},
		{"bank", ``, "invalid profile: is required"},
		{"bank", `{"steps":[{"name":"token","method":"POST","path":"/t","headers":{"X-Key":"{{field.key}}"}}]}`, `steps[0].headers.X-Key: a {{…}} reference names a field the profile does not declare`},
		{"rakbank", `{"steps":[{"name":"token","method":"POST","path":"/t"}]}`, `invalid name: "rakbank" is a built-in provider`},
	}
	for _, tc := range cases {
		resp, err := e.request(t, logical.CreateOperation, "profile/"+tc.name, map[string]any{"profile": tc.doc})
		if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), tc.want) {
			t.Errorf("%s: got %v %v, want %q", tc.doc, resp, err, tc.want)
		}
	}
	if list := e.mustOK(t, logical.ListOperation, "profile/", nil).Data["keys"].([]string); len(list) != 4 {
		t.Errorf("rejected writes stored something: %v", list)
	}
	// A profile sent as a JSON object through the API is accepted too.
	e.mustOK(t, logical.CreateOperation, "profile/obj", map[string]any{"profile": map[string]any{
		"steps": []any{map[string]any{"name": "token", "method": "POST", "path": "/t"}}}})
	// Built-ins read as profiles and cannot be deleted.
	got := e.mustOK(t, logical.ReadOperation, "profile/rakbank", nil).Data
	if got["built_in"] != true || !strings.Contains(stringify(got["profile"]), "MsgId") {
		t.Errorf("built-in read %v", got)
	}
	if resp, err := e.request(t, logical.DeleteOperation, "profile/rakbank", nil); err != nil || !resp.IsError() {
		t.Errorf("deleting a built-in: %v %v", resp, err)
	}
}

// The profiles shown in docs/custom-profile.md are valid, and the one the
// worked example writes is the file the tests use.
func TestDocsProfilesAreValid(t *testing.T) {
	doc, err := os.ReadFile("docs/custom-profile.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```json\n")[1:]
	if len(blocks) != 2 {
		t.Fatalf("found %d JSON examples, want 2", len(blocks))
	}
	for i, b := range blocks {
		text := b[:strings.Index(b, "```")]
		if _, err := bank.ParseProfile([]byte(text)); err != nil {
			t.Errorf("example %d: %v", i, err)
		}
		if i == 0 && strings.TrimSpace(text) != strings.TrimSpace(interswitchProfile(t)) {
			t.Error("the worked example's profile differs from docs/profiles/interswitch.json")
		}
	}
}

// Config writes and profile rewrites running together neither deadlock
// nor fail (a profile rewrite takes the profile lock, then each user's
// entry lock; a config write must take them in the same order).
func TestProfileAndConfigWritesTogether(t *testing.T) {
	e := newTestEnv(t)
	bank := fakebank.NewInterswitch("IKIA-c", rawSecret, time.Hour)
	srv := httptest.NewServer(bank)
	t.Cleanup(srv.Close)
	doc := interswitchProfile(t)
	e.mustOK(t, logical.CreateOperation, "profile/isw", map[string]any{"profile": doc})
	e.mustOK(t, logical.CreateOperation, "config/c", map[string]any{
		"provider": "isw", "base_url": srv.URL, "client_id": "IKIA-c", "client_secret": rawSecret})
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if resp, err := e.request(t, logical.UpdateOperation, "profile/isw", map[string]any{"profile": doc}); err != nil || resp.IsError() {
					errs <- fmt.Errorf("profile write: %v %v", resp, err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if resp, err := e.request(t, logical.UpdateOperation, "config/c", map[string]any{"scope": "profile"}); err != nil || resp.IsError() {
					errs <- fmt.Errorf("config write: %v %v", resp, err)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("writes did not finish: deadlock")
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A profile's own fields (not in the config path's schema) take strings;
// anything else is a 400 that does not quote the value.
func TestProfileFieldsTakeStrings(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "profile/keyed", map[string]any{"profile": `{"base_url":"https://bank.example",
		"fields":[{"name":"api_secret","secret":true,"required":true},{"name":"tenant"}],
		"steps":[{"name":"token","method":"POST","path":"/t","headers":{"X-Key":"{{field.api_secret}}"}}]}`})
	resp, err := e.request(t, logical.CreateOperation, "config/k", map[string]any{"provider": "keyed", "api_secret": []any{"s3cr3t-value"}})
	if err != nil || !resp.IsError() || resp.Error().Error() != "invalid api_secret: must be a string" {
		t.Fatalf("a list for a profile's field: %v %v", resp, err)
	}
	e.mustOK(t, logical.CreateOperation, "config/k", map[string]any{"provider": "keyed", "api_secret": "s3cr3t-value", "tenant": 42})
	got := e.mustOK(t, logical.ReadOperation, "config/k", nil).Data
	if got["tenant"] != "42" || got["api_secret_set"] != true || strings.Contains(stringify(got), "s3cr3t") {
		t.Fatalf("read %v", got)
	}
}

// Another node's profile change (replication, HA) reaches this node as an
// invalidation: configs are reloaded with the new profile on next use.
func TestProfileInvalidationReloadsConfigs(t *testing.T) {
	e := newTestEnv(t)
	bank := fakebank.NewInterswitch("IKIA-i", rawSecret, time.Hour)
	srv := httptest.NewServer(bank)
	t.Cleanup(srv.Close)
	e.mustOK(t, logical.CreateOperation, "profile/isw", map[string]any{"profile": interswitchProfile(t)})
	e.mustOK(t, logical.CreateOperation, "config/c", map[string]any{
		"provider": "isw", "base_url": srv.URL, "client_id": "IKIA-i", "client_secret": rawSecret})
	e.mustOK(t, logical.ReadOperation, "token/c", nil)
	if _, ok := e.b.broker.Cached("c"); !ok {
		t.Fatal("token not in memory after a read")
	}
	e.b.invalidate(context.Background(), profilePrefix+"isw")
	if _, ok := e.b.broker.Cached("c"); ok {
		t.Fatal("a profile invalidation left the old client or token in memory")
	}
}

// A restart (a new backend on the same storage) serves the stored token of
// a custom-profile config without asking the bank: the token's key, which
// covers the profile, is stable.
func TestCustomProfileTokenSurvivesRestart(t *testing.T) {
	e := newTestEnv(t)
	bank := fakebank.NewInterswitch("IKIA-r", rawSecret, time.Hour)
	srv := httptest.NewServer(bank)
	t.Cleanup(srv.Close)
	e.mustOK(t, logical.CreateOperation, "profile/isw", map[string]any{"profile": interswitchProfile(t)})
	e.mustOK(t, logical.CreateOperation, "config/c", map[string]any{
		"provider": "isw", "base_url": srv.URL, "client_id": "IKIA-r", "client_secret": rawSecret})
	tok := e.mustOK(t, logical.ReadOperation, "token/c", nil).Data["access_token"]
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e.b = lb.(*backend)
	t.Cleanup(func() { e.b.Clean(context.Background()) })
	if got := e.mustOK(t, logical.ReadOperation, "token/c", nil).Data["access_token"]; got != tok || bank.Calls() != 1 {
		t.Fatalf("after a restart: same token %t, %d bank calls", got == tok, bank.Calls())
	}
}

// The richer example in docs/custom-profile.md works as the page says:
// envelope, camelCase, a lifetime in milliseconds as a string, a
// per-request id, and the refresh call at its own URL.
func TestDocsRicherExampleRuns(t *testing.T) {
	doc, _ := os.ReadFile("docs/custom-profile.md")
	blocks := strings.Split(string(doc), "```json\n")
	example := blocks[2][:strings.Index(blocks[2], "```")]
	var mu sync.Mutex
	var paths, ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path+" "+string(body))
		ids = append(ids, r.Header.Get("X-Request-ID"))
		mu.Unlock()
		fmt.Fprintf(w, `{"data":{"accessToken":"at-%d","refreshToken":"rt-%d","expiresIn":"60000"}}`, len(paths), len(paths))
	}))
	t.Cleanup(srv.Close)
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "profile/richer", map[string]any{"profile": example})
	e.mustOK(t, logical.CreateOperation, "config/r", map[string]any{"provider": "richer", "base_url": srv.URL, "api_key": "k1", "api_secret": "s1"})
	first := e.mustOK(t, logical.ReadOperation, "token/r", nil)
	if first.Data["access_token"] != "at-1" || first.Secret.TTL < 58*time.Second || first.Secret.TTL > 60*time.Second {
		t.Fatalf("first token %v ttl %s", first.Data, first.Secret.TTL)
	}
	second := e.mustOK(t, logical.UpdateOperation, "token/r", nil)
	if second.Data["access_token"] != "at-2" {
		t.Fatalf("forced refresh %v", second.Data)
	}
	want := []string{`/auth/token {"apiKey":"k1","apiSecret":"s1"}`, `/auth/refresh {"refreshToken":"rt-1"}`}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") || len(ids[0]) != 36 {
		t.Fatalf("requests %q, X-Request-ID %q", paths, ids)
	}
}
