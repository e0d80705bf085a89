package bankauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/fakebank"
	"github.com/hashicorp/vault/sdk/logical"
)

// Reads of names nobody configured leave no state behind: before the fix
// each made a permanent entry, a cache-miss counter and metric series
// (2,000 long names made a 500 MB metrics page).
func TestUnknownNamesKeepNoState(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	e.token(t, "rak")
	for i := 0; i < 200; i++ {
		name := fmt.Sprintf("nobody-%d-%s", i, strings.Repeat("x", 100))
		resp, err := e.request(t, logical.ReadOperation, "token/"+name, nil)
		if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "no config named") {
			t.Fatalf("read of an unknown name: %v %v", resp, err)
		}
		e.request(t, logical.UpdateOperation, "token/"+name, nil)
	}
	if n := e.b.broker.Len(); n != 1 {
		t.Fatalf("state for %d names, want 1 (the configured one)", n)
	}
	resp := e.mustOK(t, logical.ReadOperation, "metrics", nil)
	if body := string(resp.Data[logical.HTTPRawBody].([]byte)); strings.Contains(body, "nobody-") {
		t.Fatal("metrics export series for names nobody configured")
	}
	// A deleted config leaves no state either.
	e.mustOK(t, logical.DeleteOperation, "config/rak", nil)
	if n := e.b.broker.Len(); n != 0 {
		t.Fatalf("state for %d names after the only config was deleted", n)
	}
	if body := string(e.mustOK(t, logical.ReadOperation, "metrics", nil).Data[logical.HTTPRawBody].([]byte)); strings.Contains(body, `config="rak"`) {
		t.Fatal("metrics still export the deleted config")
	}
}

// deleteFailing is storage whose token deletes fail.
type deleteFailing struct{ logical.Storage }

func (s deleteFailing) Delete(ctx context.Context, key string) error {
	if strings.HasPrefix(key, tokenPrefix) {
		return errors.New("storage unavailable")
	}
	return s.Storage.Delete(ctx, key)
}

// A config write that fails half way (the config stored, the old token not
// deleted) must not leave the old token in memory: before the fix the
// handler returned before forgetting, and reads kept getting it.
func TestHalfWrittenConfigNeverServesTheOldToken(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	first, _ := e.token(t, "rak")
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation,
		Path: "config/rak", Data: map[string]any{"scope": "payments"}, Storage: deleteFailing{e.storage}})
	if err == nil {
		t.Fatal("the failing delete did not fail the write")
	}
	got, resp := e.token(t, "rak")
	if got == first || resp.Data["scope"] != "payments" {
		t.Fatalf("after a half-written config change: same token %t, scope %v", got == first, resp.Data["scope"])
	}
}

// The same for a profile rewrite whose token deletes fail.
func TestHalfWrittenProfileNeverServesTheOldToken(t *testing.T) {
	e := newTestEnv(t)
	bank := fakebank.NewInterswitch("IKIA-i", rawSecret, time.Hour)
	srv := httptest.NewServer(bank)
	t.Cleanup(srv.Close)
	doc := interswitchProfile(t)
	e.mustOK(t, logical.CreateOperation, "profile/isw", map[string]any{"profile": doc})
	e.mustOK(t, logical.CreateOperation, "config/c", map[string]any{
		"provider": "isw", "base_url": srv.URL, "client_id": "IKIA-i", "client_secret": rawSecret})
	first, _ := e.token(t, "c")
	changed := strings.Replace(doc, `"default": "profile"`, `"default": "payments"`, 1)
	if changed == doc {
		t.Fatal("the profile's default scope was not found")
	}
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation,
		Path: "profile/isw", Data: map[string]any{"profile": changed}, Storage: deleteFailing{e.storage}})
	if err == nil {
		t.Fatal("the failing delete did not fail the profile write")
	}
	if got, _ := e.token(t, "c"); got == first {
		t.Fatal("after a half-written profile change the token of the old profile is served")
	}
}

// A fetch that started under the old config and ends after another node
// changed it (an invalidation) neither stores nor serves its token: before
// the fix it was stored over the new config and served from memory.
func TestFetchInFlightDuringAConfigChangeIsNotServed(t *testing.T) {
	e := newTestEnv(t)
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	held := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if held {
			arrived <- struct{}{}
			<-release
		}
		e.emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.mustOK(t, logical.CreateOperation, "config/rak", emulator.ConfigData(emulator.Rakbank, srv.URL, emulator.DefaultCredentials()))
	done := make(chan *logical.Response)
	go func() {
		resp, _ := e.request(t, logical.ReadOperation, "token/rak", nil)
		done <- resp
	}()
	<-arrived // the fetch under scope=accounts is at the bank
	// Another node changed the config (replication): storage holds the new one.
	cfg, _ := readConfig(context.Background(), e.storage, "rak")
	cfg.Settings["scope"] = "payments"
	se, _ := logical.StorageEntryJSON(configPrefix+"rak", cfg)
	if err := e.storage.Put(context.Background(), se); err != nil {
		t.Fatal(err)
	}
	e.b.invalidate(context.Background(), configPrefix+"rak")
	held = false
	close(release)
	resp := <-done
	if resp == nil || resp.IsError() || resp.Data["scope"] != "payments" {
		t.Fatalf("the reader whose fetch was overtaken got %v, want a token of the new config", resp)
	}
	stored, _ := readToken(context.Background(), e.storage, "rak")
	if stored == nil || stored.Scope != "payments" {
		t.Fatalf("storage holds a token of scope %v, want the new config's", stored)
	}
	if got := e.mustOK(t, logical.ReadOperation, "token/rak", nil).Data["scope"]; got != "payments" {
		t.Fatalf("a read serves a token of scope %v, want payments", got)
	}
}

// cache=false configs back off after a failure and keep (and store) their
// request budget like every other config; before the fix they did neither.
func TestCacheFalseBacksOffAndKeepsItsBudget(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"cache": false, "max_requests_per_minute": 3})
	e.token(t, "rak")
	if se, _ := e.storage.Get(context.Background(), budgetPrefix+"rak"); se == nil {
		t.Error("a cache=false config did not store its request budget")
	}
	e.emu.FailNext(emulator.Rakbank, -1, emulator.Failure{Status: 401})
	before := e.emu.Stats(emulator.Rakbank).Total
	for i := 0; i < 3; i++ {
		if _, err := e.request(t, logical.ReadOperation, "token/rak", nil); err == nil {
			t.Fatal("read of a failing cache=false config succeeded")
		}
	}
	if n := e.emu.Stats(emulator.Rakbank).Total - before; n != 1 {
		t.Errorf("%d bank requests for three reads of a failing cache=false config, want 1 (then backoff)", n)
	}
	// The budget counts: 1 + 1 requests so far, one more fits in the minute.
	e.emu.ClearFailures()
	e.step(time.Duration(31) * time.Second)
	e.token(t, "rak")
	if _, err := e.request(t, logical.ReadOperation, "token/rak", nil); err == nil || !strings.Contains(err.Error(), "request budget spent") {
		t.Fatalf("fourth request in a minute: %v, want the budget refusal", err)
	}
}
