package bankauth

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestConsentRefreshFailureReason(t *testing.T) {
	lost := &fapi.Error{Step: fapi.StepRefresh, Status: 200, Msg: "the answer has no access_token"}
	for _, c := range []struct {
		err     error
		expired bool
		want    string
	}{
		{&fapi.Error{Step: fapi.StepRefresh, Status: 400, Code: "invalid_grant"}, false, refreshFailInvalidGrant},
		{&fapi.Error{Step: fapi.StepRefresh, Status: 400, Code: "invalid_grant"}, true, refreshFailExpired},
		{lost, false, refreshFailUnknown},
		{&fapi.Error{Step: fapi.StepRefresh, Status: 503, Code: "temporarily_unavailable"}, false, refreshFailUpstream},
		{&fapi.Error{Step: fapi.StepRefresh, Status: 429}, false, refreshFailUpstream},
		{&fapi.Error{Step: fapi.StepRefresh, Status: 401, Code: "invalid_client"}, false, refreshFailRejected},
		{&bank.EgressError{}, false, refreshFailEgress},
		{fmt.Errorf("refresh: %w", context.DeadlineExceeded), false, refreshFailUpstream},
		{context.Canceled, false, refreshFailOther},
		{&fapi.Error{Step: fapi.StepRefresh, Msg: "cannot sign the DPoP proof"}, false, refreshFailOther},
		{errors.New("boom"), false, refreshFailOther},
	} {
		if got := refreshFailureReason(c.err, c.expired); got != c.want {
			t.Errorf("%v (expired %v): %s, want %s", c.err, c.expired, got, c.want)
		}
	}
}

// Failed consent refreshes are counted by reason where they fail: the
// bank unreachable is upstream (the consent keeps serving), a withdrawal
// at the bank is invalid_grant and a revocation. status/<config> shows the
// counters and, after the census, the counts; metrics export them.
func TestConsentRefreshFailuresCounted(t *testing.T) {
	e := newConsentEnv(t, 0)
	e.authorize(t, "alice")
	e.authorize(t, "bob")
	st := e.mustOK(t, logical.ReadOperation, "status/ob", nil).Data
	if st["consents"] != nil || st["consent_revocations"] != uint64(0) {
		t.Fatalf("before any census or failure: consents %v, revocations %v", st["consents"], st["consent_revocations"])
	}

	if err := e.op.Withdraw("alice"); err != nil {
		t.Fatal(err)
	}
	if resp, err := e.request(t, logical.UpdateOperation, "token/ob/alice", nil); err != nil || !resp.IsError() {
		t.Fatalf("refresh after withdrawal: %v %v", resp, err)
	}
	e.op.Close()
	resp := e.mustOK(t, logical.UpdateOperation, "token/ob/bob", nil) // the still valid token, with a warning
	if len(resp.Warnings) == 0 {
		t.Fatalf("bank gone: %v", resp.Data)
	}
	got, _ := e.b.consentStats.get("ob")
	want := map[string]uint64{refreshFailInvalidGrant: 1, refreshFailUpstream: 1}
	for _, r := range consentRefreshReasons {
		if got.Failures[r] != want[r] {
			t.Errorf("%s: %d, want %d", r, got.Failures[r], want[r])
		}
	}
	if got.Revocations != 1 {
		t.Errorf("%d revocations, want 1", got.Revocations)
	}

	e.step(censusFirstAfter)
	st = e.mustOK(t, logical.ReadOperation, "status/ob", nil).Data
	if c, _ := st["consents"].(map[string]int64); c[consentAuthorized] != 1 || c[consentRevoked] != 1 || st["consents_total"] != int64(2) {
		t.Errorf("status consents %v total %v", st["consents"], st["consents_total"])
	}
	if f, _ := st["consent_refresh_failures"].(map[string]uint64); f[refreshFailInvalidGrant] != 1 || st["consent_revocations"] != uint64(1) || st["consent_census_at"] == nil {
		t.Errorf("status failures %v revocations %v census_at %v", st["consent_refresh_failures"], st["consent_revocations"], st["consent_census_at"])
	}
	list := e.mustOK(t, logical.ListOperation, "status/", nil)
	row, _ := list.Data["key_info"].(map[string]any)["ob"].(map[string]any)
	if row["consents"] != int64(2) || row["consent_refresh_failures"] != uint64(2) {
		t.Errorf("status/ row %v", row)
	}
	fams := e.scrape(t, "metrics")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"bankauth_consent_revocations_total", map[string]string{"config": "ob"}, 1},
		{"bankauth_consent_refresh_failures_total", map[string]string{"config": "ob", "reason": "upstream"}, 1},
		{"bankauth_consent_refresh_failures_total", map[string]string{"config": "ob", "reason": "storage"}, 0},
		{"bankauth_consents", map[string]string{"config": "ob", "state": "revoked"}, 1},
	} {
		if v, ok := sample(fams, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
}

// A refresh whose outcome could not be stored counts as storage; the next,
// which will not send the spent refresh token again, as unknown_outcome.
func TestConsentRefreshStorageFailureCounted(t *testing.T) {
	e := newConsentEnv(t, 0)
	e.authorize(t, "alice")
	fs := &failingPuts{Storage: e.storage}
	fs.fail.Store(true)
	if _, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "token/ob/alice", Storage: fs}); err == nil {
		t.Fatal("a refresh whose result could not be stored succeeded")
	}
	fs.fail.Store(false)
	if resp, err := e.request(t, logical.UpdateOperation, "token/ob/alice", nil); err != nil || !resp.IsError() {
		t.Fatalf("second refresh: %v %v", resp, err)
	}
	got, _ := e.b.consentStats.get("ob")
	if got.Failures[refreshFailStorage] != 1 || got.Failures[refreshFailUnknown] != 1 || got.Revocations != 0 {
		t.Errorf("failures %v, revocations %d", got.Failures, got.Revocations)
	}
}
