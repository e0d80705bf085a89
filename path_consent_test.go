package bankauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/oidcop"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	consentClientID = "bankauth-consent"
	consentRedirect = "https://app.example/cb"
)

// consentEnv is a backend with keys obsig (client_auth, pinned to the AS)
// and obdpop (dpop), config ob (authorization_code, fapi=2.0) and
// oidc-provider in its FAPI 2.0 profile with DPoP nonces as the bank.
type consentEnv struct {
	*testEnv
	op *oidcop.Server
}

func newConsentEnv(t *testing.T, accessTTL int) *consentEnv {
	t.Helper()
	return newConsentEnvWith(t, accessTTL, false)
}

// newConsentEnvWith is newConsentEnv; with noPAR the server offers no
// pushed authorization requests and is not in its FAPI 2.0 profile, and
// config ob has no fapi.
func newConsentEnvWith(t *testing.T, accessTTL int, noPAR bool) *consentEnv {
	t.Helper()
	profile := "2.0"
	if noPAR {
		profile = ""
	}
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/obsig", map[string]any{"type": "ec-p256", "purpose": "client_auth"})
	e.mustOK(t, logical.CreateOperation, "key/obdpop", map[string]any{"type": "ec-p256", "purpose": "dpop"})
	k, err := readKey(context.Background(), e.storage, "obsig")
	if err != nil || k == nil {
		t.Fatal(err)
	}
	set, err := k.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(set)
	op, err := oidcop.Start(oidcop.Options{FAPI: profile, NoPAR: noPAR, DPoPNonce: true, AccessTokenTTL: accessTTL, Clients: []oidcop.Client{{
		ClientID: consentClientID, RedirectURIs: []string{consentRedirect}, TokenEndpointAuthMethod: "private_key_jwt",
		TokenEndpointAuthSigningAlg: "ES256", JWKS: jwks, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, DPoPBoundAccessTokens: true, IDTokenSignedResponseAlg: "ES256",
	}}})
	if err != nil {
		t.Fatalf("no authorization server: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(op.Log())
		}
		op.Close()
	})
	e.mustOK(t, logical.UpdateOperation, "key/obsig", map[string]any{"allowed_endpoints": op.Issuer + "/", "allowed_audiences": op.Issuer})
	e.mustOK(t, logical.CreateOperation, "config/ob", map[string]any{"provider": "oauth2", "grant_type": "authorization_code",
		"issuer": op.Issuer, "client_id": consentClientID, "auth_method": "private_key_jwt", "signing_key": "obsig",
		"dpop_key": "obdpop", "redirect_uris": consentRedirect, "scope": "openid accounts offline_access", "fapi": profile})
	return &consentEnv{testEnv: e, op: op}
}

// userAgent follows an authorization URL as the automated user and returns
// the redirect URL the app would receive.
func userAgent(t *testing.T, authURL string, header http.Header) string {
	t.Helper()
	loc, err := oidcop.Follow(authURL, consentRedirect, header)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// authorize runs a consent write, the user and the callback; it returns the
// callback's answer and the redirect URL.
func (e *consentEnv) authorize(t *testing.T, id string) (*logical.Response, string) {
	t.Helper()
	resp := e.mustOK(t, logical.UpdateOperation, "consent/ob/"+id, nil)
	if resp.Data["state"] != "pending" || resp.Data["expires_at"] == nil {
		t.Fatalf("consent write: %v", resp.Data)
	}
	loc := userAgent(t, resp.Data["authorization_url"].(string), nil)
	return e.mustOK(t, logical.UpdateOperation, "consent/ob/"+id+"/callback", map[string]any{"callback_url": loc}), loc
}

func TestConsentConfigDiscoversTheIssuer(t *testing.T) {
	e := newConsentEnv(t, 0)
	got := e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data
	for _, f := range []string{"authorization_url", "par_url", "token_url", "revocation_url", "jwks_uri"} {
		if s, _ := got[f].(string); !strings.HasPrefix(s, e.op.Issuer+"/") {
			t.Errorf("%s = %v", f, got[f])
		}
	}
	if got["grant_type"] != "authorization_code" || got["issuer"] != e.op.Issuer {
		t.Errorf("read %v", got)
	}
	// token/<name> names the consent path.
	resp, err := e.request(t, logical.ReadOperation, "token/ob", nil)
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "token/ob/<consent>") {
		t.Errorf("token/ob: %v %v", resp, err)
	}
	// fapi=2.0 refuses a config without a sender constraint.
	resp, err = e.request(t, logical.UpdateOperation, "config/ob", map[string]any{"dpop_key": ""})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "sender_constraint") {
		t.Errorf("no dpop_key: %v %v", resp, err)
	}
	// The signing key's pins cover the PAR and revocation endpoints.
	e.mustOK(t, logical.UpdateOperation, "key/obsig", map[string]any{"allowed_endpoints": e.op.Issuer + "/token"})
	resp, err = e.request(t, logical.UpdateOperation, "config/ob", map[string]any{"scope": "openid"})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "signing_key") {
		t.Errorf("PAR outside the pins: %v %v", resp, err)
	}
	// Client credentials configs are untouched: no authorization code fields in reads.
	e.configure(t, "cc", "rakbank")
	if _, ok := e.mustOK(t, logical.ReadOperation, "config/cc", nil).Data["grant_type"]; ok {
		t.Error("a client credentials read shows grant_type")
	}
}

func TestConsentFlow(t *testing.T) {
	e := newConsentEnv(t, 0)
	cb, loc := e.authorize(t, "alice")
	if cb.Data["state"] != "authorized" || cb.Data["sub"] != "alice" {
		t.Fatalf("callback: %v", cb.Data)
	}
	// Code replay: the attempt was consumed.
	resp, err := e.request(t, logical.UpdateOperation, "consent/ob/alice/callback", map[string]any{"callback_url": loc})
	if err != nil || !resp.IsError() {
		t.Fatalf("replayed callback: %v %v", resp, err)
	}
	read := e.mustOK(t, logical.ReadOperation, "consent/ob/alice", nil)
	if read.Data["state"] != "authorized" || read.Data["authorized_at"] == nil || read.Data["consent_expires_at"] != nil && read.Data["consent_expires_at"] == "" {
		t.Errorf("read %v", read.Data)
	}
	tok := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil)
	if tok.Data["token_type"] != "DPoP" || tok.Data["access_token"] == "" || tok.Secret == nil || tok.Secret.Renewable {
		t.Fatalf("token %v %v", tok.Data, tok.Secret)
	}
	again := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil)
	if again.Data["access_token"] != tok.Data["access_token"] {
		t.Error("a fresh token was not served from the cache")
	}
	forced := e.mustOK(t, logical.UpdateOperation, "token/ob/alice", nil)
	if forced.Data["access_token"] == tok.Data["access_token"] {
		t.Error("a forced refresh answered the old token")
	}
	rec, _ := readConsent(context.Background(), e.storage, "ob", "alice")
	if rec.LastRefreshAt.IsZero() || rec.Token.RefreshToken == "" {
		t.Errorf("after refresh: %v", rec.Token)
	}
	// Nothing secret in the read.
	raw, _ := json.Marshal(read.Data)
	for _, s := range []string{rec.Token.AccessToken, rec.Token.RefreshToken, "code="} {
		if strings.Contains(string(raw), s) {
			t.Errorf("consent read holds a secret")
		}
	}
	// Withdrawal at the bank: the next refresh revokes the consent.
	if err := e.op.Withdraw("alice"); err != nil {
		t.Fatal(err)
	}
	resp, err = e.request(t, logical.UpdateOperation, "token/ob/alice", nil)
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "consent ob/alice needs re-authorization") {
		t.Fatalf("after withdrawal: %v %v", resp, err)
	}
	if st := e.mustOK(t, logical.ReadOperation, "consent/ob/alice", nil).Data["state"]; st != "revoked" {
		t.Errorf("state %v", st)
	}
	// A new attempt authorizes it again; deletion revokes at the bank.
	e.authorize(t, "alice")
	e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil)
	destroyed := e.op.Events("refresh_token.destroyed")
	e.mustOK(t, logical.DeleteOperation, "consent/ob/alice", nil)
	if e.op.Events("refresh_token.destroyed") != destroyed+1 {
		t.Errorf("the bank revoked no refresh token:\n%s", e.op.Log())
	}
	if got, _ := readConsent(context.Background(), e.storage, "ob", "alice"); got != nil {
		t.Error("consent not removed")
	}
	if resp, err := e.request(t, logical.ListOperation, "consent/ob/", nil); !isNotFound(resp, err) {
		t.Errorf("list still shows the consent: %v %v", resp, err)
	}
}

func TestConsentDenialAndWrongState(t *testing.T) {
	e := newConsentEnv(t, 0)
	resp := e.mustOK(t, logical.UpdateOperation, "consent/ob/bob", nil)
	loc := userAgent(t, resp.Data["authorization_url"].(string), http.Header{"X-Test-Decision": {"deny"}})
	cb := e.mustOK(t, logical.UpdateOperation, "consent/ob/bob/callback", map[string]any{"callback_url": loc})
	if cb.Data["state"] != "denied" || !strings.Contains(cb.Data["last_error"].(string), "access_denied") {
		t.Errorf("denied: %v", cb.Data)
	}
	resp = e.mustOK(t, logical.UpdateOperation, "consent/ob/carol", nil)
	loc = userAgent(t, resp.Data["authorization_url"].(string), nil)
	bad := strings.Replace(loc, "state=", "state=x", 1)
	r, err := e.request(t, logical.UpdateOperation, "consent/ob/carol/callback", map[string]any{"callback_url": bad})
	if err != nil || !r.IsError() || !strings.Contains(r.Error().Error(), "state") {
		t.Errorf("wrong state: %v %v", r, err)
	}
	// The attempt is gone: even the right URL is refused now.
	r, err = e.request(t, logical.UpdateOperation, "consent/ob/carol/callback", map[string]any{"callback_url": loc})
	if err != nil || !r.IsError() {
		t.Errorf("after a wrong state: %v %v", r, err)
	}
	list := e.mustOK(t, logical.ListOperation, "consent/ob/", nil).Data["keys"].([]string)
	if strings.Join(list, ",") != "bob,carol" {
		t.Errorf("list %v", list)
	}
	// The config cannot be deleted from under its consents.
	r, err = e.request(t, logical.DeleteOperation, "config/ob", nil)
	if err != nil || !r.IsError() || !strings.Contains(r.Error().Error(), "config ob has consents: delete them first") {
		t.Errorf("config delete with consents: %v %v", r, err)
	}
}

// Twenty readers of an expired token cost one refresh.
func TestConsentConcurrentReadersOneRefresh(t *testing.T) {
	e := newConsentEnv(t, 3)
	e.authorize(t, "alice")
	first := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil).Data["access_token"]
	// Past the token's 3 s life on the backend's clock; the bank accepts
	// assertions and proofs dated that far ahead of its own clock.
	e.clock.Advance(3 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[any]bool{}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.request(t, logical.ReadOperation, "token/ob/alice", nil)
			if err != nil || resp.IsError() {
				t.Errorf("read: %v %v", resp, err)
				return
			}
			mu.Lock()
			seen[resp.Data["access_token"]] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 1 || seen[first] {
		t.Errorf("%d distinct tokens among 20 readers (old one among them: %v)", len(seen), seen[first])
	}
	if n := e.op.Events("refresh_token.consumed"); n != 1 {
		t.Errorf("the bank saw %d refreshes", n)
	}
}

// Bad input is a 400 naming the field, never quoting it, and stores nothing.
func TestConsentInputIsChecked(t *testing.T) {
	e := newConsentEnv(t, 0)
	for _, c := range []struct {
		path  string
		data  map[string]any
		field string
	}{
		{"consent/ob/x", map[string]any{"ttl": "2h"}, "invalid ttl"},
		{"consent/ob/x", map[string]any{"redirect_uri": "https://evil.example/cb"}, "invalid redirect_uri"},
		{"consent/ob/x", map[string]any{"params": `{"state":"secret-value-1"}`}, "invalid params"},
		{"consent/ob/x", map[string]any{"params": []any{"secret-value-1"}}, "invalid params"},
		{"consent/ob/x", map[string]any{"authorization_details": `{"type":"secret-value-1"}`}, "invalid authorization_details"},
		{"consent/ob/x", map[string]any{"claims": `["secret-value-1"]`}, "invalid claims"},
		{"consent/nope/x", nil, "no config nope"},
		{"consent/ob/x..y", nil, "invalid id"},
		{"consent/ob/x/callback", map[string]any{"code": "secret-value-1"}, "consent ob/x does not exist"},
		{"consent/ob/x/callback", map[string]any{"callback_url": "https://app.example/cb?x=secret-value-1"}, "invalid callback_url"},
		{"consent/ob/x/callback", nil, "invalid callback_url"},
		{"token/ob/x", nil, "consent ob/x does not exist"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, c.path, c.data)
		if err != nil || resp == nil || !resp.IsError() || !strings.HasPrefix(resp.Error().Error(), c.field) ||
			strings.Contains(resp.Error().Error(), "secret-value-1") {
			t.Errorf("%s %v: %v %v, want a 400 starting %q", c.path, c.data, resp, err, c.field)
		}
	}
	if keys, _ := e.storage.List(context.Background(), consentPrefix+"ob/"); len(keys) != 0 {
		t.Errorf("bad input stored %v", keys)
	}
	// A consent of a client credentials config is refused.
	e.configure(t, "cc", "rakbank")
	resp, _ := e.request(t, logical.UpdateOperation, "consent/cc/x", nil)
	if resp == nil || !strings.Contains(resp.Error().Error(), "grant_type authorization_code") {
		t.Errorf("consent of a client credentials config: %v", resp)
	}
}

// RFC 9207: a callback whose iss is not the issuer is refused and
// consumes the attempt.
func TestConsentCallbackChecksIss(t *testing.T) {
	e := newConsentEnv(t, 0)
	resp := e.mustOK(t, logical.UpdateOperation, "consent/ob/dave", nil)
	loc := userAgent(t, resp.Data["authorization_url"].(string), nil)
	q, _ := url.Parse(loc)
	v := q.Query()
	v.Set("iss", "https://evil.example")
	q.RawQuery = v.Encode()
	r, err := e.request(t, logical.UpdateOperation, "consent/ob/dave/callback", map[string]any{"callback_url": q.String()})
	if err != nil || !r.IsError() || !strings.Contains(r.Error().Error(), "callback: iss:") {
		t.Fatalf("wrong iss: %v %v", r, err)
	}
	rec, _ := readConsent(context.Background(), e.storage, "ob", "dave")
	if rec.Attempt != nil || rec.Token != nil || !strings.Contains(rec.LastError, "iss") {
		t.Errorf("after a wrong iss: attempt kept %v, last_error %q", rec.Attempt != nil, rec.LastError)
	}
}

func TestConsentListPages(t *testing.T) {
	e := newTestEnv(t)
	for _, id := range []string{"c", "a", "b", "d"} {
		if err := putConsent(context.Background(), e.storage, "ob", id, &consentRecord{State: consentPending}); err != nil {
			t.Fatal(err)
		}
		if err := e.b.indexConsent(context.Background(), e.storage, "ob", id); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		data map[string]any
		want string
	}{
		{nil, "a,b,c,d"},
		{map[string]any{"limit": 2}, "a,b"},
		{map[string]any{"after": "b", "limit": 1}, "c"},
	} {
		got, _ := e.mustOK(t, logical.ListOperation, "consent/ob/", c.data).Data["keys"].([]string)
		if strings.Join(got, ",") != c.want {
			t.Errorf("list %v = %v, want %s", c.data, got, c.want)
		}
	}
	if resp, err := e.request(t, logical.ListOperation, "consent/ob/", map[string]any{"after": "d"}); !isNotFound(resp, err) {
		t.Errorf("list after the last: %v %v, want 404", resp, err)
	}
}

// A delete whose revocation fails removes nothing (502), unless force=true.
func TestConsentDeleteWhenTheBankFails(t *testing.T) {
	e := newConsentEnv(t, 0)
	e.authorize(t, "alice")
	e.op.Close() // the bank is gone
	resp, err := e.request(t, logical.DeleteOperation, "consent/ob/alice", nil)
	if err == nil || !strings.Contains(err.Error(), "consent ob/alice: revoke: request failed") ||
		!strings.Contains(err.Error(), "nothing removed") {
		t.Fatalf("delete with the bank down: %v %v", resp, err)
	}
	if rec, _ := readConsent(context.Background(), e.storage, "ob", "alice"); rec == nil || rec.Token == nil {
		t.Fatal("a failed delete removed the consent")
	}
	resp = e.mustOK(t, logical.DeleteOperation, "consent/ob/alice", map[string]any{"force": true})
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "not revoked at the bank") {
		t.Errorf("forced delete warnings %v", resp.Warnings)
	}
	if rec, _ := readConsent(context.Background(), e.storage, "ob", "alice"); rec != nil {
		t.Error("a forced delete kept the consent")
	}
}

func TestConsentRefreshTokenSpent(t *testing.T) {
	for _, c := range []struct {
		name  string
		err   error
		spent bool
	}{
		{"invalid_grant", &fapi.Error{Step: fapi.StepRefresh, Status: 400, Code: "invalid_grant"}, true},
		{"server error", &fapi.Error{Step: fapi.StepRefresh, Status: 503, Code: "temporarily_unavailable"}, false},
		{"invalid_client", &fapi.Error{Step: fapi.StepRefresh, Status: 401, Code: "invalid_client"}, false},
		{"a 200 that could not be read", &fapi.Error{Step: fapi.StepRefresh, Status: 200, Msg: "the answer has no access_token"}, true},
		{"not sent: cannot sign", &fapi.Error{Step: fapi.StepRefresh, Msg: "cannot sign the DPoP proof"}, false},
		{"other", errors.New("boom"), false},
	} {
		if got := refreshTokenSpent(c.err); got != c.spent {
			t.Errorf("%s: spent %v, want %v", c.name, got, c.spent)
		}
	}
}

// A refresh that got no answer may have spent the refresh token at the
// bank: it is never sent again. One whose connection failed was never
// sent, and keeps the token.
func TestConsentRefreshWithoutAnswer(t *testing.T) {
	hangUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer hangUp.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, c := range []struct {
		name, endpoint string
		spent          bool
	}{{"hang-up after the request", hangUp.URL + "/token", true}, {"connection refused", gone.URL + "/token", false}} {
		fc := &fapi.Client{HTTP: &http.Client{Timeout: 5 * time.Second}, ClientID: "c", Auth: fapi.TLSClientAuth{},
			Metadata: &fapi.Metadata{Issuer: "http://127.0.0.1", TokenEndpoint: c.endpoint}}
		_, err := fc.Refresh(context.Background(), "refresh-token-value", "")
		if err == nil || refreshTokenSpent(err) != c.spent {
			t.Errorf("%s: %v: spent %v, want %v", c.name, err, refreshTokenSpent(err), c.spent)
		}
	}
	// Through the backend: with the bank gone, a forced refresh keeps the
	// consent and serves the still valid token with a warning.
	e := newConsentEnv(t, 0)
	e.authorize(t, "alice")
	e.op.Close()
	resp := e.mustOK(t, logical.UpdateOperation, "token/ob/alice", nil)
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "could not be refreshed: refresh: request failed") {
		t.Errorf("warnings %v", resp.Warnings)
	}
	rec, _ := readConsent(context.Background(), e.storage, "ob", "alice")
	if rec.State != consentAuthorized || rec.Token == nil || rec.LastError == "" {
		t.Errorf("state %s, token kept %v, last_error %q", rec.State, rec.Token != nil, rec.LastError)
	}
}

// failingPuts is storage whose writes fail while fail is set.
type failingPuts struct {
	logical.Storage
	fail atomic.Bool
}

func (f *failingPuts) Put(ctx context.Context, se *logical.StorageEntry) error {
	if f.fail.Load() {
		return errors.New("storage unavailable")
	}
	return f.Storage.Put(ctx, se)
}

// A rotated refresh token whose successor could not be stored is never
// sent again: the consent needs re-authorization instead.
func TestConsentRefreshTokenNeverSentTwice(t *testing.T) {
	e := newConsentEnv(t, 0)
	e.authorize(t, "alice")
	fs := &failingPuts{Storage: e.storage}
	fs.fail.Store(true)
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "token/ob/alice", Storage: fs})
	if err == nil {
		t.Fatal("a refresh whose result could not be stored succeeded")
	}
	consumed := e.op.Events("refresh_token.consumed")
	fs.fail.Store(false)
	resp, err := e.request(t, logical.UpdateOperation, "token/ob/alice", nil)
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "needs re-authorization: the refresh token was sent to the bank before") {
		t.Fatalf("second refresh: %v %v", resp, err)
	}
	if e.op.Events("refresh_token.consumed") != consumed || consumed != 1 {
		t.Errorf("the bank saw %d refreshes, then %d more", consumed, e.op.Events("refresh_token.consumed")-consumed)
	}
}
