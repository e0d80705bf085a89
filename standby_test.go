package bankauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// replicaOf is a second backend on e's storage (and bank) whose system view
// reports state, as a node of the same cluster in that replication state.
func replicaOf(t *testing.T, e *testEnv, state consts.ReplicationState) *testEnv {
	t.Helper()
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	sv := logical.TestSystemView()
	sv.ReplicationStateVal = state
	conf.System = sv
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{b: lb.(*backend), storage: e.storage, emu: e.emu, url: e.url}
}

// TestPerformanceStandbyNeverCallsTheBank covers what a real-Vault test
// cannot without Vault Enterprise: on a performance standby storage is
// read-only, so whatever would call the bank and then store the answer must
// return logical.ErrReadOnly before the bank call, for Vault to forward the
// request to the active node, which then makes the one bank request.
func TestPerformanceStandbyNeverCallsTheBank(t *testing.T) {
	ctx := context.Background()
	active := newTestEnv(t)
	active.configure(t, "rak", emulator.Rakbank)
	tok := active.mustOK(t, logical.ReadOperation, "token/rak", nil).Data["access_token"]
	standby := replicaOf(t, active, consts.ReplicationPerformanceStandby)
	requests := func() int { return active.emu.Stats(emulator.Rakbank).Total }

	// A fresh stored token is served by the standby itself.
	if got := standby.mustOK(t, logical.ReadOperation, "token/rak", nil).Data["access_token"]; got != tok {
		t.Fatalf("standby served %v, want the stored token", got)
	}
	// A forced refresh is forwarded before anything happens.
	if _, err := standby.request(t, logical.UpdateOperation, "token/rak", nil); !errors.Is(err, logical.ErrReadOnly) {
		t.Fatalf("forced refresh on a standby: err=%v, want logical.ErrReadOnly", err)
	}
	// A read that needs a new token too: the stored one has expired (the
	// active node's write reaches the standby as an invalidation).
	expired := &bank.Token{AccessToken: "expired-token", TokenType: "bearer",
		ObtainedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)}
	se, _ := logical.StorageEntryJSON(tokenPrefix+"rak", expired)
	if err := active.storage.Put(ctx, se); err != nil {
		t.Fatal(err)
	}
	standby.b.invalidate(ctx, tokenPrefix+"rak")
	if _, err := standby.request(t, logical.ReadOperation, "token/rak", nil); !errors.Is(err, logical.ErrReadOnly) {
		t.Fatalf("read of an expired token on a standby: err=%v, want logical.ErrReadOnly", err)
	}
	if n := requests(); n != 1 {
		t.Fatalf("the bank saw %d requests, want only the active node's first one", n)
	}
	// Forwarded to the active node, the same read makes one bank request.
	active.b.invalidate(ctx, tokenPrefix+"rak")
	fresh := active.mustOK(t, logical.ReadOperation, "token/rak", nil).Data["access_token"]
	if fresh == tok || fresh == expired.AccessToken || requests() != 2 {
		t.Fatalf("active node served %v after %d bank requests, want a new token after 2", fresh, requests())
	}
	standby.b.invalidate(ctx, tokenPrefix+"rak")
	if got := standby.mustOK(t, logical.ReadOperation, "token/rak", nil).Data["access_token"]; got != fresh || requests() != 2 {
		t.Fatalf("standby served %v after %d bank requests, want the active node's new token", got, requests())
	}
}

// TestPerformanceSecondaryRefreshesItsOwnToken: tokens are local to a
// performance-replication cluster, so a secondary's active node refreshes
// its own token rather than forwarding to the primary (whose new token it
// would never see).
func TestPerformanceSecondaryRefreshesItsOwnToken(t *testing.T) {
	primary := newTestEnv(t)
	primary.configure(t, "rak", emulator.Rakbank)
	secondary := replicaOf(t, primary, consts.ReplicationPerformanceSecondary)
	old := secondary.mustOK(t, logical.ReadOperation, "token/rak", nil).Data["access_token"]
	forced := secondary.mustOK(t, logical.UpdateOperation, "token/rak", nil).Data["access_token"]
	if forced == old || primary.emu.Stats(emulator.Rakbank).Total != 2 {
		t.Fatalf("forced refresh on a secondary: %v (was %v), stats %+v", forced, old, primary.emu.Stats(emulator.Rakbank))
	}
}
