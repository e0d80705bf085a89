package bankauth

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/jonboulle/clockwork"
)

// testEnv is a backend on in-memory storage next to an emulator served over
// real HTTP on loopback.
type testEnv struct {
	b       *backend
	storage logical.Storage
	emu     *emulator.Server
	url     string
	clock   *clockwork.FakeClock // the backend's clock: tests step it
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	allowLoopback(t, conf.StorageView)
	clock := clockwork.NewFakeClockAt(time.Now())
	b, err := factoryWithClock(context.Background(), conf, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Clean(context.Background()) })
	emu := emulator.New(emulator.Options{})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &testEnv{b: b, storage: conf.StorageView, emu: emu, url: srv.URL, clock: clock}
}

// step moves the backend's clock on by d and waits for the background
// refreshes that became due to finish.
func (e *testEnv) step(d time.Duration) {
	e.clock.Advance(d)
	e.b.broker.WaitBackground()
}

// allowLoopback stores mount settings with allow_loopback on, as make dev
// and the e2e tests do: the tests' banks listen on 127.0.0.1, which the
// production egress policy refuses.
func allowLoopback(t testing.TB, s logical.Storage) {
	t.Helper()
	se, err := logical.StorageEntryJSON(settingsKey, &mountSettings{AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), se); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) request(t *testing.T, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: op, Path: path, Data: data, Storage: e.storage,
	})
}

// mustOK fails the test unless the request succeeded.
func (e *testEnv) mustOK(t *testing.T, op logical.Operation, path string, data map[string]any) *logical.Response {
	t.Helper()
	resp, err := e.request(t, op, path, data)
	if err != nil || resp.IsError() {
		t.Fatalf("%s %s: err=%v resp=%v", op, path, err, resp)
	}
	return resp
}

// configure writes config/<name> for provider against the emulator.
func (e *testEnv) configure(t *testing.T, name, provider string) {
	t.Helper()
	e.mustOK(t, logical.CreateOperation, "config/"+name, emulator.ConfigData(provider, e.url, emulator.DefaultCredentials()))
}

func TestBackendReportsVersion(t *testing.T) {
	e := newTestEnv(t)
	if e.b.RunningVersion != Version || Version == "" {
		t.Fatalf("RunningVersion %q", e.b.RunningVersion)
	}
}
