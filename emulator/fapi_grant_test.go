package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// codeFor pushes a request and has the user approve it.
func (e *fapiEnv) codeFor() (code, verifier string) {
	e.t.Helper()
	verifier, challenge := pkce()
	return e.authorize(e.push(e.parForm(challenge))).Get("code"), verifier
}

func codeForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {fapiTestRedirect}, "code_verifier": {verifier}}
}

func TestFAPICodeGrantRefusals(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	for _, tc := range []struct {
		name string
		edit func(url.Values)
	}{
		{"wrong verifier", func(f url.Values) { f.Set("code_verifier", strings.Repeat("a", 43)) }},
		{"short verifier", func(f url.Values) { f.Set("code_verifier", "abc") }},
		{"no verifier", func(f url.Values) { f.Del("code_verifier") }},
		{"other redirect", func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:8400/cb") }},
		{"no redirect", func(f url.Values) { f.Del("redirect_uri") }},
		{"unknown code", func(f url.Values) { f.Set("code", "nope") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := codeForm(e.codeFor())
			tc.edit(f)
			wantOAuthError(t, e.post(FAPITokenPath, f), 400, "invalid_grant")
		})
	}
	// Expired after 60 s.
	code, verifier := e.codeFor()
	e.clock.Advance(61 * time.Second)
	wantOAuthError(t, e.post(FAPITokenPath, codeForm(code, verifier)), 400, "invalid_grant")
	// A DPoP key other than the one dpop_jkt named.
	code, verifier = e.codeFor()
	e.dpopKey = newKey(t)
	wantOAuthError(t, e.post(FAPITokenPath, codeForm(code, verifier)), 400, "invalid_grant")
	// Another grant type.
	wantOAuthError(t, e.post(FAPITokenPath, url.Values{"grant_type": {"client_credentials"}}), 400, "unsupported_grant_type")
	if st := e.s.FAPIStats(); st.Exchanges != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFAPICodeReplayRevokesTokens(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	code, verifier := e.codeFor()
	r := e.post(FAPITokenPath, codeForm(code, verifier))
	wantStatus(t, r, 200)
	tok := r.json(t)
	wantOAuthError(t, e.post(FAPITokenPath, codeForm(code, verifier)), 400, "invalid_grant")
	if _, ok := e.s.FAPIAccessTokenValid(tok["access_token"].(string)); ok {
		t.Fatal("access token survived a code replay")
	}
	wantOAuthError(t, e.refresh(tok["refresh_token"].(string)), 400, "invalid_grant")
	if st := e.s.FAPIStats(); st.ReuseDetected != 1 || st.Exchanges != 1 || len(e.s.FAPIGrants()) != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFAPIRefresh(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{GrantTTL: time.Hour})
	tok, _ := e.grant()
	// A narrower scope narrows the access token; a wider one is refused.
	r := e.post(FAPITokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "scope": {"payments"}})
	wantOAuthError(t, r, 400, "invalid_scope")
	r = e.post(FAPITokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "scope": {"accounts"}})
	wantStatus(t, r, 200)
	tok = r.json(t)
	if tok["scope"] != "accounts" {
		t.Fatalf("scope %v", tok["scope"])
	}
	// A new DPoP key binds the new access token (RFC 9449 section 5).
	e.dpopKey = newKey(t)
	r = e.refresh(tok["refresh_token"].(string))
	wantStatus(t, r, 200)
	tok = r.json(t)
	if jkt, _ := e.s.FAPIAccessTokenValid(tok["access_token"].(string)); jkt != thumbprint(t, &e.dpopKey.PublicKey) {
		t.Fatal("access token not bound to the refresh's proof key")
	}
	// The grant ends after GrantTTL, and its refresh tokens with it.
	e.clock.Advance(time.Hour)
	wantOAuthError(t, e.refresh(tok["refresh_token"].(string)), 400, "invalid_grant")
	// Another client cannot use the refresh token.
	e.clock.Advance(time.Minute)
	tok, _ = e.grant()
	other := newKey(t)
	if err := e.s.RegisterFAPIClient(FAPIClient{ID: "other", RedirectURIs: []string{fapiTestRedirect}, JWKS: jwksOf(t, "o", &other.PublicKey)}); err != nil {
		t.Fatal(err)
	}
	c := e.assertionClaims()
	c["iss"], c["sub"] = "other", "other"
	f := url.Values{"client_id": {"other"}, "client_assertion_type": {clientAssertionType},
		"client_assertion": {sign(t, other, jose.ES256, c, (&jose.SignerOptions{}).WithHeader("kid", "o"))},
		"grant_type":       {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}
	wantOAuthError(t, e.send(FAPITokenPath, f, e.proof(FAPITokenPath)), 400, "invalid_grant")
	wantStatus(t, e.refresh(tok["refresh_token"].(string)), 200)
}

func TestFAPIRevocation(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	revoke := func(token string) resp {
		f := e.authForm()
		f.Set("token", token)
		f.Set("token_type_hint", "refresh_token")
		return e.send(FAPIRevokePath, f, "")
	}
	tok, _ := e.grant()
	// An access token ends alone.
	wantStatus(t, revoke(tok["access_token"].(string)), 200)
	if _, ok := e.s.FAPIAccessTokenValid(tok["access_token"].(string)); ok {
		t.Fatal("access token not revoked")
	}
	r := e.refresh(tok["refresh_token"].(string))
	wantStatus(t, r, 200)
	tok = r.json(t)
	// A refresh token ends the grant and its access tokens.
	wantStatus(t, revoke(tok["refresh_token"].(string)), 200)
	if _, ok := e.s.FAPIAccessTokenValid(tok["access_token"].(string)); ok {
		t.Fatal("access token survived its grant's revocation")
	}
	wantOAuthError(t, e.refresh(tok["refresh_token"].(string)), 400, "invalid_grant")
	// Unknown (or already revoked) tokens: 200.
	wantStatus(t, revoke("never-issued"), 200)
	wantStatus(t, revoke(tok["refresh_token"].(string)), 200)
	// Client authentication is required; so is token.
	wantOAuthError(t, e.send(FAPIRevokePath, url.Values{"token": {"x"}}, ""), 401, "invalid_client")
	wantOAuthError(t, e.send(FAPIRevokePath, e.authForm(), ""), 400, "invalid_request")
	// Another client's token is refused.
	tok, _ = e.grant()
	other := newKey(t)
	e.s.RegisterFAPIClient(FAPIClient{ID: "other", RedirectURIs: []string{fapiTestRedirect}, JWKS: jwksOf(t, "o", &other.PublicKey)})
	c := e.assertionClaims()
	c["iss"], c["sub"] = "other", "other"
	f := url.Values{"client_assertion_type": {clientAssertionType}, "token": {tok["refresh_token"].(string)},
		"client_assertion": {sign(t, other, jose.ES256, c, (&jose.SignerOptions{}).WithHeader("kid", "o"))}}
	wantOAuthError(t, e.send(FAPIRevokePath, f, ""), 400, "unauthorized_client")
	wantStatus(t, e.refresh(tok["refresh_token"].(string)), 200)
	if st := e.s.FAPIStats(); st.Revocations != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFAPIWithdraw(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	alice, _ := e.grant()
	alice2, _ := e.grant()
	e.s.SetFAPIUser("bob")
	bob, _ := e.grant()
	if g := e.s.FAPIGrants(); len(g) != 3 || g[0].Scope != "openid accounts offline_access" || g[0].AuthorizationDetails == nil {
		t.Fatalf("grants %+v", g)
	}
	r := e.sendJSON("/_emulator/fapi/withdraw", `{"user":"alice"}`)
	wantStatus(t, r, 200)
	if m := r.json(t); m["withdrawn"] != 2.0 {
		t.Fatalf("withdraw answer %s", r.body)
	}
	for _, tok := range []map[string]any{alice, alice2} {
		wantOAuthError(t, e.refresh(tok["refresh_token"].(string)), 400, "invalid_grant")
		if _, ok := e.s.FAPIAccessTokenValid(tok["access_token"].(string)); ok {
			t.Fatal("access token survived withdrawal")
		}
	}
	wantStatus(t, e.refresh(bob["refresh_token"].(string)), 200)
	wantStatus(t, e.sendJSON("/_emulator/fapi/withdraw", `{}`), 400)
	if st := e.s.FAPIStats(); st.Withdrawals != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFAPIClientJWKSURI(t *testing.T) {
	sig := newKey(t)
	var fetches atomic.Int32
	var body atomic.Value
	body.Store(jwksOf(t, "k1", &sig.PublicKey))
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body.Load().(json.RawMessage))
	}))
	defer jwksSrv.Close()
	e := newFAPIEnv(t, FAPIOptions{Client: FAPIClient{ID: DefaultFAPIClientID, JWKSURI: jwksSrv.URL + "/v1/bankauth/jwks/obsig"}})
	e.sigKey, e.sigKID = sig, "k1"
	if fetches.Load() != 0 {
		t.Fatal("jwks_uri fetched before it was needed")
	}
	e.grant()
	e.grant()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (cached)", n)
	}
	// The client rotates its key: an unknown kid fetches the set again,
	// but not more than once per 10 s.
	rotated := newKey(t)
	body.Store(jwksOf(t, "k2", &rotated.PublicKey))
	e.sigKey, e.sigKID = rotated, "k2"
	wantOAuthError(t, e.post(FAPIPARPath, e.parForm(strings.Repeat("A", 43))), 401, "invalid_client")
	e.clock.Advance(11 * time.Second)
	e.grant()
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// A client whose jwks_uri fails is refused with invalid_client.
	if err := e.s.RegisterFAPIClient(FAPIClient{ID: DefaultFAPIClientID, RedirectURIs: []string{fapiTestRedirect}, JWKSURI: jwksSrv.URL + "/gone"}); err != nil {
		t.Fatal(err)
	}
	body.Store(json.RawMessage(`{"keys":"no"}`))
	wantOAuthError(t, e.post(FAPIPARPath, e.parForm(strings.Repeat("A", 43))), 401, "invalid_client")
}

func TestFAPIAdminAndFaults(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	// The common knobs take provider fapi: an injected failure in OAuth
	// shape, limited to a path.
	wantStatus(t, e.sendJSON("/_emulator/fail", `{"provider":"fapi","status":503,"path":"/fapi/token","headers":{"Retry-After":"2"}}`), 200)
	code, verifier := e.codeFor()
	r := e.post(FAPITokenPath, codeForm(code, verifier))
	wantOAuthError(t, r, 503, "temporarily_unavailable")
	if r.header.Get("Retry-After") != "2" {
		t.Fatalf("headers %v", r.header)
	}
	wantStatus(t, e.post(FAPITokenPath, codeForm(code, verifier)), 200)
	wantStatus(t, e.sendJSON("/_emulator/ttl", `{"provider":"fapi","seconds":300}`), 200)
	if tok, _ := e.grant(); tok["expires_in"] != 300.0 {
		t.Fatalf("expires_in %v", tok["expires_in"])
	}
	// A failure that consumes: the code is used up behind a 502.
	wantStatus(t, e.sendJSON("/_emulator/fail", `{"provider":"fapi","status":502,"path":"/fapi/token","consume":true}`), 200)
	code, verifier = e.codeFor()
	wantStatus(t, e.post(FAPITokenPath, codeForm(code, verifier)), 502)
	wantOAuthError(t, e.post(FAPITokenPath, codeForm(code, verifier)), 400, "invalid_grant")

	// Nonces can be turned off.
	wantStatus(t, e.sendJSON("/_emulator/fapi/config", `{"dpop_nonce":false}`), 200)
	e.nonce = ""
	before := e.s.FAPIStats().NonceChallenges
	e.grant()
	if e.s.FAPIStats().NonceChallenges != before || e.nonce != "" {
		t.Fatal("nonce challenged while off")
	}

	r = e.get("/_emulator/fapi/stats")
	wantStatus(t, r, 200)
	if m := r.json(t); m["par"] != 4.0 || m["exchanges"] != 4.0 || m["reuse_detected"] != 1.0 || m["failed"] != 4.0 {
		t.Fatalf("stats %s", r.body)
	}
	r = e.get("/_emulator/fapi/grants")
	wantStatus(t, r, 200)
	if strings.Contains(string(r.body), "emu-fapi-rt-") || !strings.Contains(string(r.body), `"user":"alice"`) {
		t.Fatalf("grants %s", r.body)
	}
	// The four banks' stats are as they were.
	var stats map[string]json.RawMessage
	json.Unmarshal(e.get("/_emulator/stats").body, &stats)
	if len(stats) != 4 {
		t.Fatalf("stats has %d providers", len(stats))
	}
	wantStatus(t, e.sendJSON("/_emulator/fapi/client", `{"client_id":"x"}`), 400)
	wantStatus(t, e.sendJSON("/_emulator/fapi/client", `{"client_id":"x","redirect_uris":["https://x.example/cb"],"jwks":{"keys":[]}}`), 400)
	wantStatus(t, e.sendJSON("/_emulator/fapi/client", `{"client_id":"x","redirect_uris":["https://x.example/cb"],"jwks_uri":"http://127.0.0.1:1/jwks"}`), 200)
	wantStatus(t, e.sendJSON("/_emulator/fapi/config", `{`), 400)
	wantStatus(t, e.sendJSON("/_emulator/fapi/stats", `{}`), 405)
	wantStatus(t, e.get("/_emulator/fapi/nothing"), 404)
	if ProviderForPath(FAPITokenPath) != FAPI || ProviderForPath(FAPIOAuthMetadataPath) != FAPI {
		t.Fatal("ProviderForPath")
	}

	// Reset forgets grants and counters and restores approval.
	wantStatus(t, e.sendJSON("/_emulator/fapi/config", `{"deny":true,"dpop_nonce":true}`), 200)
	wantStatus(t, e.sendJSON("/_emulator/reset", ``), 200)
	if st := e.s.FAPIStats(); st != (FAPIStats{}) || len(e.s.FAPIGrants()) != 0 {
		t.Fatalf("after reset %+v", st)
	}
	e.nonce = ""
	e.grant()
}

func TestFAPIIssuedSecrets(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	tok, _ := e.grant()
	secrets := e.s.IssuedSecrets(FAPI)
	for _, want := range []string{tok["access_token"].(string), tok["refresh_token"].(string)} {
		found := false
		for _, s := range secrets {
			found = found || s == want
		}
		if !found {
			t.Fatal("IssuedSecrets misses a token")
		}
	}
}

func TestFAPIUserInfo(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	tok, _ := e.grant()
	at := tok["access_token"].(string)
	userinfo := func(auth string, edit func(map[string]any)) resp {
		c := e.proofClaims(FAPIUserInfoPath)
		c["htm"], c["ath"] = "GET", accessTokenHash(at)
		if edit != nil {
			edit(c)
		}
		req := mustRequest(t, "GET", e.base+FAPIUserInfoPath, "")
		req.Header.Set("Authorization", auth)
		req.Header.Set("DPoP", e.proofWith(e.dpopKey, "dpop+jwt", c))
		return e.roundTrip(req)
	}
	r := userinfo("DPoP "+at, nil)
	wantStatus(t, r, 200)
	if m := r.json(t); m["sub"] != "alice" || m["scope"] != "openid accounts offline_access" || m["authorization_details"] == nil {
		t.Fatalf("userinfo %s", r.body)
	}
	wantOAuthError(t, userinfo("Bearer "+at, nil), 401, "invalid_token")
	wantOAuthError(t, userinfo("DPoP "+at, func(c map[string]any) { delete(c, "ath") }), 401, "invalid_dpop_proof")
	e.nonce = "stale"
	r = userinfo("DPoP "+at, nil)
	wantOAuthError(t, r, 401, "use_dpop_nonce")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `DPoP error="use_dpop_nonce"`) || r.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("challenge headers %v", r.header)
	}
	e.dpopKey = newKey(t)
	wantOAuthError(t, userinfo("DPoP "+at, nil), 401, "invalid_token")
	if st := e.s.FAPIStats(); st.UserInfo != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFAPIRefreshWithoutRotation(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{NoRefreshRotation: true})
	tok, _ := e.grant()
	rt := tok["refresh_token"].(string)
	for range 3 {
		r := e.refresh(rt)
		wantStatus(t, r, 200)
		if m := r.json(t); m["refresh_token"] != nil || m["refresh_token_expires_in"] == nil {
			t.Fatalf("refresh answer %s", r.body)
		}
	}
	// Back on: the next refresh rotates, and the old token is then reuse.
	wantStatus(t, e.sendJSON("/_emulator/fapi/config", `{"refresh_rotation":true}`), 200)
	r := e.refresh(rt)
	wantStatus(t, r, 200)
	if r.json(t)["refresh_token"] == nil {
		t.Fatal("no rotation")
	}
	wantOAuthError(t, e.refresh(rt), 400, "invalid_grant")
	if st := e.s.FAPIStats(); st.Refreshes != 4 || st.ReuseDetected != 1 {
		t.Fatalf("stats %+v", st)
	}
}
