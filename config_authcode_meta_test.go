package bankauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// metaAS is an authorization server that serves only its metadata
// (RFC 8414) and counts every request: discovery, and anything else.
type metaAS struct {
	srv       *httptest.Server
	mu        sync.Mutex
	doc       map[string]any // nil: metadata answers 404
	status    int            // when not 0, metadata answers this
	discovery atomic.Int64
	others    atomic.Int64
}

func newMetaAS(t *testing.T) *metaAS {
	t.Helper()
	as := &metaAS{}
	as.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/.well-known/") {
			as.others.Add(1)
			http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
			return
		}
		as.discovery.Add(1)
		as.mu.Lock()
		doc, status := as.doc, as.status
		as.mu.Unlock()
		switch {
		case status != 0:
			w.WriteHeader(status)
		case doc == nil || r.URL.Path != "/.well-known/oauth-authorization-server":
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(doc)
		}
	}))
	t.Cleanup(as.srv.Close)
	return as
}

// serve sets the metadata document: the issuer's own endpoints, with
// endpoint names (metadata names) mapped to other URLs by moved.
func (as *metaAS) serve(moved map[string]string) {
	iss := as.srv.URL
	doc := map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "pushed_authorization_request_endpoint": iss + "/par",
		"token_endpoint": iss + "/token", "revocation_endpoint": iss + "/revoke", "jwks_uri": iss + "/jwks",
		"code_challenge_methods_supported": []string{"S256"},
	}
	for k, v := range moved {
		doc[k] = v
	}
	as.mu.Lock()
	as.doc, as.status = doc, 0
	as.mu.Unlock()
}

func (as *metaAS) fail(status int) {
	as.mu.Lock()
	as.status = status
	as.mu.Unlock()
}

// newMetaEnv is a backend with signing key obsig pinned to as and other
// (both may receive assertions), and dpop key obdpop.
func newMetaEnv(t *testing.T, as *metaAS, other string) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/obsig", map[string]any{"type": "ec-p256", "purpose": "client_auth",
		"allowed_endpoints": as.srv.URL + "/," + other + "/", "allowed_audiences": as.srv.URL})
	e.mustOK(t, logical.CreateOperation, "key/obdpop", map[string]any{"type": "ec-p256", "purpose": "dpop"})
	return e
}

// metaConfig is config ob's fields against issuer, plus extra.
func metaConfig(issuer string, extra map[string]any) map[string]any {
	d := map[string]any{"provider": "oauth2", "grant_type": "authorization_code", "issuer": issuer,
		"client_id": "c1", "auth_method": "private_key_jwt", "signing_key": "obsig", "dpop_key": "obdpop",
		"redirect_uris": "https://app.example/cb", "scope": "openid accounts offline_access", "fapi": "2.0"}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

// useConfig runs what every consent request runs first: the config's FAPI
// client, refreshing the metadata when due. It returns the token endpoint
// the client would use.
func useConfig(t *testing.T, e *testEnv) string {
	t.Helper()
	cc, resp, err := e.b.consentClientFor(context.Background(), e.storage, "ob")
	if err != nil || resp != nil {
		t.Fatalf("consent client: %v %v", resp, err)
	}
	defer e.b.closeConsentClient("ob", cc)
	if cc.meta.TokenEndpoint != cc.cfg.Settings["token_url"] {
		t.Errorf("the client's token endpoint is not the config's token_url")
	}
	return cc.meta.TokenEndpoint
}

func TestAuthCodeMetadataRefreshAfter24h(t *testing.T) {
	as, other := newMetaAS(t), newMetaAS(t)
	as.serve(nil)
	e := newMetaEnv(t, as, other.srv.URL)
	e.mustOK(t, logical.CreateOperation, "config/ob", metaConfig(as.srv.URL, nil))
	if n := as.discovery.Load(); n != 1 {
		t.Fatalf("config write fetched metadata %d times", n)
	}
	read := e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data
	if read["metadata_fetched_at"] == nil || read["metadata_pending_change"] != nil || read["metadata_refresh_error"] != nil {
		t.Errorf("config read %v", read)
	}

	// Younger than 24h: no fetch.
	e.clock.Advance(23 * time.Hour)
	useConfig(t, e)
	if n := as.discovery.Load(); n != 1 {
		t.Errorf("metadata 23h old was fetched again (%d)", n)
	}

	// Older: fetched once; a new path on the same host is applied.
	as.serve(map[string]string{"token_endpoint": as.srv.URL + "/token2"})
	e.clock.Advance(2 * time.Hour)
	if got := useConfig(t, e); got != as.srv.URL+"/token2" {
		t.Errorf("after a refresh on the same host the token endpoint is %s", got)
	}
	useConfig(t, e)
	if n := as.discovery.Load(); n != 2 {
		t.Errorf("a due refresh fetched metadata %d times, want 1", n-1)
	}

	// A refresh that moves an endpoint to another host is held back.
	as.serve(map[string]string{"token_endpoint": other.srv.URL + "/token"})
	e.clock.Advance(25 * time.Hour)
	if got := useConfig(t, e); got != as.srv.URL+"/token2" {
		t.Errorf("a refresh moving token_endpoint to another host was applied: %s", got)
	}
	useConfig(t, e)
	if n := as.discovery.Load(); n != 3 {
		t.Errorf("a held-back refresh: %d fetches, want 3", n)
	}
	for _, path := range []string{"config/ob", "status/ob"} {
		data := e.mustOK(t, logical.ReadOperation, path, nil).Data
		pending, _ := data["metadata_pending_change"].([]string)
		if len(pending) != 1 || !strings.HasPrefix(pending[0], "token_endpoint moved from ") ||
			!strings.HasSuffix(pending[0], strings.TrimPrefix(other.srv.URL, "http://")) {
			t.Errorf("%s: metadata_pending_change %v", path, data["metadata_pending_change"])
		}
	}
	if other.others.Load() != 0 {
		t.Error("a request went to the moved endpoint")
	}

	// The operator rewrites the config: the move is applied.
	e.mustOK(t, logical.UpdateOperation, "config/ob", map[string]any{"scope": "openid accounts"})
	read = e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data
	if read["token_url"] != other.srv.URL+"/token" || read["metadata_pending_change"] != nil {
		t.Errorf("after the rewrite: token_url %v, pending %v", read["token_url"], read["metadata_pending_change"])
	}
}

func TestAuthCodeMetadataRefreshFailureKeepsServing(t *testing.T) {
	as := newMetaAS(t)
	as.serve(nil)
	e := newMetaEnv(t, as, as.srv.URL)
	e.mustOK(t, logical.CreateOperation, "config/ob", metaConfig(as.srv.URL, nil))
	as.fail(http.StatusServiceUnavailable)
	e.clock.Advance(25 * time.Hour)
	if got := useConfig(t, e); got != as.srv.URL+"/token" {
		t.Errorf("token endpoint %s after a failed refresh", got)
	}
	n := as.discovery.Load()
	data := e.mustOK(t, logical.ReadOperation, "status/ob", nil).Data
	if s, _ := data["metadata_refresh_error"].(string); !strings.Contains(s, "HTTP 503") {
		t.Errorf("metadata_refresh_error %v", data["metadata_refresh_error"])
	}
	// Not retried for an hour, then retried and cleared.
	e.clock.Advance(30 * time.Minute)
	useConfig(t, e)
	if as.discovery.Load() != n {
		t.Error("a failed refresh was retried within the hour")
	}
	as.serve(nil)
	e.clock.Advance(31 * time.Minute)
	useConfig(t, e)
	data = e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data
	if as.discovery.Load() == n || data["metadata_refresh_error"] != nil {
		t.Errorf("after the retry: fetches %d, error %v", as.discovery.Load()-n, data["metadata_refresh_error"])
	}
}

func TestAuthCodeEndpointsByHand(t *testing.T) {
	as := newMetaAS(t) // publishes no metadata
	iss := as.srv.URL
	e := newMetaEnv(t, as, as.srv.URL)
	hand := map[string]any{"authorization_url": iss + "/authorize", "par_url": iss + "/par", "token_url": iss + "/token"}

	// Not all required: discovery runs, fails, and names what to set.
	resp, err := e.request(t, logical.CreateOperation, "config/ob", metaConfig(iss, hand))
	if err == nil || !strings.Contains(err.Error(), "set authorization_url, par_url, token_url, jwks_uri by hand") {
		t.Errorf("without jwks_uri: %v %v", resp, err)
	}
	hand["jwks_uri"] = iss + "/jwks"
	as.discovery.Store(0)
	e.mustOK(t, logical.CreateOperation, "config/ob", metaConfig(iss, hand))
	if n := as.discovery.Load(); n != 0 {
		t.Errorf("a config with every endpoint by hand fetched metadata %d times", n)
	}
	read := e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data
	for f, v := range hand {
		if read[f] != v {
			t.Errorf("%s = %v", f, read[f])
		}
	}
	if by, _ := read["endpoints_set_by_hand"].([]string); len(by) != 4 || read["metadata_fetched_at"] != nil {
		t.Errorf("read %v", read)
	}
	e.clock.Advance(72 * time.Hour)
	useConfig(t, e)
	if n := as.discovery.Load(); n != 0 {
		t.Errorf("hand-set metadata was refreshed (%d fetches)", n)
	}
	// Another write keeps them by hand.
	e.mustOK(t, logical.UpdateOperation, "config/ob", map[string]any{"scope": "openid accounts"})
	if as.discovery.Load() != 0 || e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data["token_url"] != iss+"/token" {
		t.Error("an update lost the hand-set endpoints")
	}

	// Every endpoint is checked: the URL rule names the field, never the
	// value; the signing key's pins cover a hand-set token_url.
	for field, bad := range map[string]string{"par_url": "http://10.9.8.7/par", "jwks_uri": "https://u:p@bank.example/jwks", "revocation_url": "not a url"} {
		resp, err := e.request(t, logical.UpdateOperation, "config/ob", map[string]any{field: bad})
		if err != nil || !resp.IsError() || !strings.HasPrefix(resp.Error().Error(), "invalid "+field+":") || strings.Contains(resp.Error().Error(), bad) {
			t.Errorf("%s: %v %v", field, resp, err)
		}
	}
	resp, err = e.request(t, logical.UpdateOperation, "config/ob", map[string]any{"token_url": "https://elsewhere.example/token"})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "signing_key") {
		t.Errorf("token_url outside the pins: %v %v", resp, err)
	}

	// The egress policy applies: with loopback refused, the PAR request
	// to the hand-set endpoint is never sent.
	e.mustOK(t, logical.UpdateOperation, "settings", map[string]any{"allow_loopback": false})
	resp, err = e.request(t, logical.UpdateOperation, "consent/ob/alice", nil)
	if err == nil && !resp.IsError() {
		t.Errorf("a consent write reached a loopback endpoint: %v", resp)
	}
	if n := as.others.Load(); n != 0 {
		t.Errorf("%d requests reached the bank past the egress policy", n)
	}
}

func TestAuthCodeEndpointOverridesDiscovery(t *testing.T) {
	as := newMetaAS(t)
	as.serve(nil)
	e := newMetaEnv(t, as, as.srv.URL)
	e.mustOK(t, logical.CreateOperation, "config/ob", metaConfig(as.srv.URL, map[string]any{"revocation_url": as.srv.URL + "/rev2"}))
	read := e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data
	if read["revocation_url"] != as.srv.URL+"/rev2" || read["token_url"] != as.srv.URL+"/token" {
		t.Errorf("read %v", read)
	}
	as.serve(map[string]string{"revocation_endpoint": as.srv.URL + "/rev3"})
	e.clock.Advance(25 * time.Hour)
	cc, resp, err := e.b.consentClientFor(context.Background(), e.storage, "ob")
	if err != nil || resp != nil {
		t.Fatal(resp, err)
	}
	e.b.closeConsentClient("ob", cc)
	if cc.meta.RevocationEndpoint != as.srv.URL+"/rev2" {
		t.Errorf("a refresh replaced a hand-set endpoint")
	}
	// Emptying the field returns it to discovery.
	e.mustOK(t, logical.UpdateOperation, "config/ob", map[string]any{"revocation_url": ""})
	if got := e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data["revocation_url"]; got != as.srv.URL+"/rev3" {
		t.Errorf("revocation_url %v after unsetting it", got)
	}
}
