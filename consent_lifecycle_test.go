package bankauth

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// A consent's fresh token is answered from memory before the framework, as
// the framework answers it; a change to the consent in storage (another
// node's write, a new callback) drops it from memory.
func TestConsentTokenFastPath(t *testing.T) {
	e := newConsentEnv(t, 0)
	e.authorize(t, "alice")
	req := &logical.Request{Operation: logical.ReadOperation, Path: "token/ob/alice", Storage: e.storage}
	if e.b.fastTokenRead(req) != nil {
		t.Fatal("the fast path answered a consent nobody read yet")
	}
	slow := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil)
	fast := e.b.fastTokenRead(req)
	if fast == nil {
		t.Fatal("the fast path did not answer a cached consent token")
	}
	for _, k := range []string{"access_token", "token_type", "expires_at", "scope"} {
		if fast.Data[k] != slow.Data[k] {
			t.Errorf("%s: %v (fast) vs %v (framework)", k, fast.Data[k], slow.Data[k])
		}
	}
	if (fast.Secret == nil) != (slow.Secret == nil) {
		t.Errorf("lease %+v (fast) vs %+v (framework)", fast.Secret, slow.Secret)
	}
	for _, p := range []string{"token/ob/bob", "token/ob/alice/x", "token/ob/", "token//alice"} {
		if e.b.fastTokenRead(&logical.Request{Operation: logical.ReadOperation, Path: p}) != nil {
			t.Errorf("fast path answered %s", p)
		}
	}
	e.b.invalidate(context.Background(), "consent/ob/alice")
	if e.b.fastTokenRead(req) != nil {
		t.Fatal("served from memory after another node changed the consent")
	}
	e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil)
	// A new authorization of the authorized consent: new tokens.
	begin := e.mustOK(t, logical.UpdateOperation, "consent/ob/alice", nil)
	loc := userAgent(t, begin.Data["authorization_url"].(string), nil)
	e.mustOK(t, logical.UpdateOperation, "consent/ob/alice/callback", map[string]any{"callback_url": loc})
	next := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil)
	if next.Data["access_token"] == slow.Data["access_token"] {
		t.Error("the token of the old authorization was served after a new callback")
	}
}

// An attempt nobody completes is removed by the scheduler at its expiry:
// its secrets leave storage and the consent shows expired.
func TestConsentAttemptRemovedAtExpiry(t *testing.T) {
	e := newConsentEnv(t, 0)
	resp := e.mustOK(t, logical.UpdateOperation, "consent/ob/bob", map[string]any{"ttl": "5m"})
	if resp.Data["state"] != "pending" {
		t.Fatalf("write: %v", resp.Data)
	}
	e.step(4 * time.Minute)
	if rec, _ := readConsent(context.Background(), e.storage, "ob", "bob"); rec == nil || rec.Attempt == nil {
		t.Fatal("the attempt was removed before its expiry")
	}
	e.step(time.Minute)
	rec, err := readConsent(context.Background(), e.storage, "ob", "bob")
	if err != nil || rec == nil || rec.Attempt != nil || rec.State != consentExpired {
		t.Fatalf("after expiry: %+v %v", rec, err)
	}
	if n := e.b.broker.Planned(); n != 0 {
		t.Errorf("%d tasks still planned", n)
	}
	if keys, _ := e.storage.List(context.Background(), attemptIndexPrefix+"ob/"); len(keys) != 0 {
		t.Errorf("attempt index keeps %v", keys)
	}
}

// An attempt written before a restart is removed by the sweep of the
// attempt index that the first use of consents plans (the mount itself
// reads nothing for it).
func TestConsentAttemptSweptAfterRestart(t *testing.T) {
	e := newConsentEnv(t, 0)
	e.mustOK(t, logical.UpdateOperation, "consent/ob/bob", map[string]any{"ttl": "5m"})
	// The restart: a new backend on the same storage and clock.
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	nb, err := factoryWithClock(context.Background(), conf, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	e.b.Clean(context.Background())
	e.b = nb
	t.Cleanup(func() { nb.Clean(context.Background()) })
	if err := nb.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if n := nb.broker.Planned(); n != 0 {
		t.Fatalf("the new backend planned %d tasks at mount", n)
	}
	e.mustOK(t, logical.ReadOperation, "consent/ob/bob", nil) // consents in use
	e.step(5 * time.Minute)
	if rec, _ := readConsent(context.Background(), e.storage, "ob", "bob"); rec == nil || rec.Attempt == nil {
		t.Fatal("removed before the sweep")
	}
	e.step(attemptSweepEvery - 5*time.Minute)
	rec, err := readConsent(context.Background(), e.storage, "ob", "bob")
	if err != nil || rec == nil || rec.Attempt != nil || rec.State != consentExpired {
		t.Fatalf("after the sweep: %+v %v", rec, err)
	}
	if keys, _ := e.storage.List(context.Background(), attemptIndexPrefix); len(keys) != 0 {
		t.Errorf("attempt index keeps %v", keys)
	}
}
