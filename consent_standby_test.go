package bankauth

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// TestConsentWritesForwardToTheActiveNode: every consent operation that
// calls the bank or writes storage (a consent write, its callback, its
// delete, a forced token refresh) is marked for forwarding, so a
// performance standby (Vault Enterprise) hands it to the active node
// before the plugin runs. Vault OSS standbys forward every request anyway.
func TestConsentWritesForwardToTheActiveNode(t *testing.T) {
	e := newTestEnv(t)
	n := 0
	for _, p := range e.b.Paths {
		if !strings.HasPrefix(p.Pattern, "consent/") && !strings.HasPrefix(p.Pattern, "token/"+consentNamePattern) {
			continue
		}
		for op, h := range p.Operations {
			if op == logical.ReadOperation || op == logical.ListOperation {
				continue
			}
			n++
			if !h.Properties().ForwardPerformanceStandby {
				t.Errorf("%s %s is not forwarded from performance standbys", op, p.Pattern)
			}
		}
	}
	if n < 5 {
		t.Errorf("found %d consent write operations, want at least 5", n)
	}
}

// TestConsentPerformanceStandbyServesCachedTokens covers what a real-Vault
// test cannot without Vault Enterprise: a performance standby serves a
// consent's fresh stored token itself, and returns logical.ErrReadOnly
// (Vault then forwards the request to the active node) before any bank
// request for a stale token or a forced refresh; it never refreshes the
// issuer's metadata either.
func TestConsentPerformanceStandbyServesCachedTokens(t *testing.T) {
	ctx := context.Background()
	e := newConsentEnv(t, 600)
	e.authorize(t, "alice")
	tok := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil).Data["access_token"]
	standby := replicaOf(t, e.testEnv, consts.ReplicationPerformanceStandby)
	refreshes := func() int { return e.op.Events("refresh_token.consumed") }

	if got := standby.mustOK(t, logical.ReadOperation, "token/ob/alice", nil).Data["access_token"]; got != tok || refreshes() != 0 {
		t.Fatalf("standby served the stored token: %v, bank refreshes %d", got == tok, refreshes())
	}
	if _, err := standby.request(t, logical.UpdateOperation, "token/ob/alice", nil); !errors.Is(err, logical.ErrReadOnly) {
		t.Errorf("forced refresh on a standby: err=%v, want logical.ErrReadOnly", err)
	}
	// The stored token goes stale (as the active node's storage would show).
	rec, err := readConsent(ctx, e.storage, "ob", "alice")
	if err != nil || rec == nil {
		t.Fatal(err)
	}
	rec.Token.IssuedAt, rec.Token.ExpiresAt = time.Now().Add(-time.Hour), time.Now().Add(time.Minute)
	if err := putConsent(ctx, e.storage, "ob", "alice", rec); err != nil {
		t.Fatal(err)
	}
	standby.b.invalidate(ctx, consentKey("ob", "alice")) // as Vault tells a standby of the active node's write
	if _, err := standby.request(t, logical.ReadOperation, "token/ob/alice", nil); !errors.Is(err, logical.ErrReadOnly) {
		t.Errorf("read of a stale token on a standby: err=%v, want logical.ErrReadOnly", err)
	}
	if n := refreshes(); n != 0 {
		t.Errorf("the standby made %d refreshes at the bank", n)
	}

	// Metadata older than 24 h is left for the active node.
	cfg, err := readStoredConfig(ctx, e.storage, "ob")
	if err != nil || cfg == nil {
		t.Fatal(err)
	}
	st, err := loadAuthServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.CheckedAt = time.Now().Add(-48 * time.Hour)
	if err := st.store(cfg); err != nil {
		t.Fatal(err)
	}
	se, _ := logical.StorageEntryJSON(configPrefix+"ob", cfg)
	if err := e.storage.Put(ctx, se); err != nil {
		t.Fatal(err)
	}
	cc, resp, err := standby.b.consentClientFor(ctx, e.storage, "ob")
	if err != nil || resp != nil {
		t.Fatal(resp, err)
	}
	standby.b.closeConsentClient("ob", cc)
	after, _ := readStoredConfig(ctx, e.storage, "ob")
	if !bytes.Equal(after.AuthServer, cfg.AuthServer) {
		t.Error("a performance standby refreshed the issuer's metadata")
	}
}
