package emulator

import (
	"encoding/json"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestFAPIDiscovery(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	for _, path := range []string{"/.well-known/oauth-authorization-server/fapi", "/fapi/.well-known/openid-configuration"} {
		r := e.get(path)
		wantStatus(t, r, 200)
		m := r.json(t)
		want := map[string]any{
			"issuer":                                           e.issuer,
			"authorization_endpoint":                           e.issuer + "/authorize",
			"pushed_authorization_request_endpoint":            e.issuer + "/par",
			"require_pushed_authorization_requests":            true,
			"token_endpoint":                                   e.issuer + "/token",
			"revocation_endpoint":                              e.issuer + "/revoke",
			"jwks_uri":                                         e.issuer + "/jwks",
			"userinfo_endpoint":                                e.issuer + "/userinfo",
			"authorization_response_iss_parameter_supported":   true,
			"code_challenge_methods_supported":                 []any{"S256"},
			"token_endpoint_auth_methods_supported":            []any{"private_key_jwt"},
			"token_endpoint_auth_signing_alg_values_supported": []any{"PS256", "ES256", "EdDSA"},
			"dpop_signing_alg_values_supported":                []any{"PS256", "ES256", "EdDSA"},
			"id_token_signing_alg_values_supported":            []any{"ES256"},
			"scopes_supported":                                 []any{"openid", "offline_access", "accounts", "payments", "profile"},
		}
		for k, v := range want {
			if !reflect.DeepEqual(m[k], v) {
				t.Errorf("%s: %s = %v, want %v", path, k, m[k], v)
			}
		}
	}
	r := e.get(FAPIJWKSPath)
	wantStatus(t, r, 200)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.body, &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() ||
		set.Keys[0].Algorithm != "ES256" || set.Keys[0].KeyID == "" {
		t.Fatalf("jwks %s", r.body)
	}
	// A configured public URL fixes the issuer whatever the Host.
	e2 := newFAPIEnv(t, FAPIOptions{PublicURL: "http://127.0.0.1:8300/"})
	if m := e2.get(FAPIOAuthMetadataPath).json(t); m["issuer"] != "http://127.0.0.1:8300/fapi" {
		t.Fatalf("issuer %v", m["issuer"])
	}
	wantStatus(t, e.send(FAPIOIDCMetadataPath, nil, ""), 405)
}

func TestFAPIFullFlow(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	verifier, challenge := pkce()
	form := e.parForm(challenge)

	// The first PAR has no nonce: the server challenges, and nothing is used up.
	f := e.authForm()
	for k, v := range form {
		f[k] = v
	}
	r := e.send(FAPIPARPath, f, e.proof(FAPIPARPath))
	wantOAuthError(t, r, 400, "use_dpop_nonce")
	if r.header.Get("DPoP-Nonce") == "" {
		t.Fatal("no DPoP-Nonce with the challenge")
	}
	uri := e.push(form)

	q := e.authorize(uri)
	if q.Get("state") != form.Get("state") || q.Get("iss") != e.issuer || q.Get("code") == "" || q.Has("error") {
		t.Fatalf("callback %v", q)
	}
	e.clock.Advance(5 * time.Second)
	r = e.post(FAPITokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {fapiTestRedirect}, "code_verifier": {verifier}})
	wantStatus(t, r, 200)
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("DPoP-Nonce") == "" {
		t.Errorf("headers %v", r.header)
	}
	tok := r.json(t)
	if tok["token_type"] != "DPoP" || tok["expires_in"] != 60.0 || tok["scope"] != "openid accounts offline_access" ||
		tok["refresh_token_expires_in"] != float64(DefaultFAPIGrantTTL/time.Second) || tok["refresh_token"] == "" {
		t.Fatalf("token answer %s", r.body)
	}
	if d, _ := json.Marshal(tok["authorization_details"]); string(d) != `[{"actions":["read"],"type":"account_information"}]` {
		t.Errorf("authorization_details %s", d)
	}

	// The ID token and the access token verify with the published key.
	var set jose.JSONWebKeySet
	json.Unmarshal(e.get(FAPIJWKSPath).body, &set)
	idt, err := jwt.ParseSigned(tok["id_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || idt.Headers[0].KeyID != set.Keys[0].KeyID {
		t.Fatalf("id_token: %v", err)
	}
	var idc struct {
		jwt.Claims
		Nonce    string `json:"nonce"`
		AuthTime int64  `json:"auth_time"`
	}
	if err := idt.Claims(set.Keys[0].Key, &idc); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	if err := idc.ValidateWithLeeway(jwt.Expected{Issuer: e.issuer, Subject: "alice", AnyAudience: jwt.Audience{DefaultFAPIClientID}, Time: now}, 0); err != nil {
		t.Fatal(err)
	}
	if idc.Nonce != form.Get("nonce") || idc.IssuedAt.Time().Unix() != now.Unix() || idc.AuthTime != now.Add(-5*time.Second).Unix() {
		t.Fatalf("id_token claims %+v", idc)
	}
	at, err := jwt.ParseSigned(tok["access_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var atc struct {
		jwt.Claims
		CNF      map[string]string `json:"cnf"`
		ClientID string            `json:"client_id"`
	}
	if err := at.Claims(set.Keys[0].Key, &atc); err != nil {
		t.Fatal(err)
	}
	if typ := at.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "at+jwt" || atc.CNF["jkt"] != form.Get("dpop_jkt") || atc.ClientID != DefaultFAPIClientID || atc.Subject != "alice" {
		t.Fatalf("access token %v %+v", typ, atc)
	}
	if jkt, ok := e.s.FAPIAccessTokenValid(tok["access_token"].(string)); !ok || jkt != form.Get("dpop_jkt") {
		t.Fatal("access token not valid at the server")
	}

	// Refresh rotates; the old one sent again revokes the whole grant.
	e.clock.Advance(30 * time.Second)
	r = e.refresh(tok["refresh_token"].(string))
	wantStatus(t, r, 200)
	tok2 := r.json(t)
	if tok2["refresh_token"] == tok["refresh_token"] || tok2["access_token"] == tok["access_token"] || tok2["id_token"] != nil ||
		tok2["refresh_token_expires_in"] != float64(DefaultFAPIGrantTTL/time.Second-30) || tok2["scope"] != tok["scope"] {
		t.Fatalf("refresh answer %s", r.body)
	}
	wantOAuthError(t, e.refresh(tok["refresh_token"].(string)), 400, "invalid_grant")
	wantOAuthError(t, e.refresh(tok2["refresh_token"].(string)), 400, "invalid_grant")
	if _, ok := e.s.FAPIAccessTokenValid(tok2["access_token"].(string)); ok {
		t.Fatal("access token survived refresh token reuse")
	}
	st := e.s.FAPIStats()
	if st.PAR != 1 || st.Authorizations != 1 || st.Exchanges != 1 || st.Refreshes != 1 || st.ReuseDetected != 1 ||
		st.NonceChallenges != 1 || st.Failed != 3 || st.Total != 8 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFAPIPARRefusals(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	_, challenge := pkce()
	other := thumbprint(t, &newKey(t).PublicKey)
	for _, tc := range []struct {
		name, code string
		edit       func(url.Values)
	}{
		{"no challenge", "invalid_request", func(f url.Values) { f.Del("code_challenge") }},
		{"plain", "invalid_request", func(f url.Values) { f.Set("code_challenge_method", "plain") }},
		{"short challenge", "invalid_request", func(f url.Values) { f.Set("code_challenge", "abc") }},
		{"unregistered redirect", "invalid_request", func(f url.Values) { f.Set("redirect_uri", "https://evil.example/cb") }},
		{"no redirect", "invalid_request", func(f url.Values) { f.Del("redirect_uri") }},
		{"unknown scope", "invalid_scope", func(f url.Values) { f.Set("scope", "openid admin") }},
		{"token response", "unsupported_response_type", func(f url.Values) { f.Set("response_type", "token") }},
		{"fragment mode", "invalid_request", func(f url.Values) { f.Set("response_mode", "fragment") }},
		{"request object", "request_not_supported", func(f url.Values) { f.Set("request", "x.y.z") }},
		{"pushed request_uri", "invalid_request", func(f url.Values) { f.Set("request_uri", "urn:x") }},
		{"dpop_jkt of another key", "invalid_dpop_proof", func(f url.Values) { f.Set("dpop_jkt", other) }},
		{"details not array", "invalid_authorization_details", func(f url.Values) { f.Set("authorization_details", `{"type":"x"}`) }},
		{"details without type", "invalid_authorization_details", func(f url.Values) { f.Set("authorization_details", `[{"actions":[]}]`) }},
		{"claims not object", "invalid_request", func(f url.Values) { f.Set("claims", `[1]`) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := e.parForm(challenge)
			tc.edit(f)
			wantOAuthError(t, e.post(FAPIPARPath, f), 400, tc.code)
		})
	}
	// A parameter given twice, a query string, another media type.
	f := e.authForm()
	for k, v := range e.parForm(challenge) {
		f[k] = v
	}
	f.Add("scope", "payments")
	wantOAuthError(t, e.send(FAPIPARPath, f, e.proof(FAPIPARPath)), 400, "invalid_request")
	f.Del("scope")
	wantOAuthError(t, e.send(FAPIPARPath+"?scope=openid", f, e.proof(FAPIPARPath)), 400, "invalid_request")
	wantOAuthError(t, e.do(FAPIPARPath, "application/json", "{}"), 400, "invalid_request")
	// Without a proof the request is accepted; dpop_jkt alone binds the code.
	f = e.authForm()
	for k, v := range e.parForm(challenge) {
		f[k] = v
	}
	wantStatus(t, e.send(FAPIPARPath, f, ""), 201)
	if st := e.s.FAPIStats(); st.PAR != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// do posts a raw body with a Content-Type.
func (e *fapiEnv) do(path, contentType, body string) resp {
	e.t.Helper()
	req := mustRequest(e.t, "POST", e.base+path, body)
	req.Header.Set("Content-Type", contentType)
	return e.roundTrip(req)
}

func TestFAPIClientAssertion(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	_, challenge := pkce()
	stranger := newKey(t)
	for _, tc := range []struct {
		name string
		edit func(e *fapiEnv, f url.Values)
	}{
		{"missing", func(e *fapiEnv, f url.Values) { f.Del("client_assertion") }},
		{"wrong type", func(e *fapiEnv, f url.Values) { f.Set("client_assertion_type", "urn:x") }},
		{"client secret", func(e *fapiEnv, f url.Values) { f.Set("client_secret", "s") }},
		{"aud is the token endpoint", func(e *fapiEnv, f url.Values) {
			c := e.assertionClaims()
			c["aud"] = e.issuer + "/token"
			f.Set("client_assertion", e.assertion(c))
		}},
		{"aud as an array", func(e *fapiEnv, f url.Values) {
			c := e.assertionClaims()
			c["aud"] = []string{e.issuer}
			f.Set("client_assertion", e.assertion(c))
		}},
		{"expired", func(e *fapiEnv, f url.Values) {
			c := e.assertionClaims()
			c["exp"] = e.clock.Now().Add(-2 * time.Minute).Unix()
			f.Set("client_assertion", e.assertion(c))
		}},
		{"no exp", func(e *fapiEnv, f url.Values) {
			c := e.assertionClaims()
			delete(c, "exp")
			f.Set("client_assertion", e.assertion(c))
		}},
		{"exp too far", func(e *fapiEnv, f url.Values) {
			c := e.assertionClaims()
			c["exp"] = e.clock.Now().Add(time.Hour).Unix()
			f.Set("client_assertion", e.assertion(c))
		}},
		{"issued in the future", func(e *fapiEnv, f url.Values) {
			c := e.assertionClaims()
			c["iat"] = e.clock.Now().Add(5 * time.Minute).Unix()
			f.Set("client_assertion", e.assertion(c))
		}},
		{"no jti", func(e *fapiEnv, f url.Values) {
			c := e.assertionClaims()
			delete(c, "jti")
			f.Set("client_assertion", e.assertion(c))
		}},
		{"sub differs", func(e *fapiEnv, f url.Values) {
			c := e.assertionClaims()
			c["sub"] = "someone"
			f.Set("client_assertion", e.assertion(c))
		}},
		{"unknown client", func(e *fapiEnv, f url.Values) {
			c := e.assertionClaims()
			c["iss"], c["sub"] = "nobody", "nobody"
			f.Set("client_assertion", e.assertion(c))
			f.Set("client_id", "nobody")
		}},
		{"client_id differs", func(e *fapiEnv, f url.Values) { f.Set("client_id", "other") }},
		{"another key", func(e *fapiEnv, f url.Values) {
			f.Set("client_assertion", sign(t, stranger, jose.ES256, e.assertionClaims(), (&jose.SignerOptions{}).WithHeader("kid", e.sigKID)))
		}},
		{"HS256", func(e *fapiEnv, f url.Values) {
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
			s, _ := jwt.Signed(signer).Claims(e.assertionClaims()).Serialize()
			f.Set("client_assertion", s)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := e.authForm()
			for k, v := range e.parForm(challenge) {
				f[k] = v
			}
			tc.edit(e, f)
			r := e.send(FAPIPARPath, f, e.proof(FAPIPARPath))
			if strings.Contains(string(r.body), "use_dpop_nonce") {
				r = e.send(FAPIPARPath, f, e.proof(FAPIPARPath))
			}
			wantOAuthError(t, r, 401, "invalid_client")
		})
	}
	// A jti is single-use.
	f := e.authForm()
	for k, v := range e.parForm(challenge) {
		f[k] = v
	}
	wantStatus(t, e.send(FAPIPARPath, f, e.proof(FAPIPARPath)), 201)
	wantOAuthError(t, e.send(FAPIPARPath, f, e.proof(FAPIPARPath)), 401, "invalid_client")
	// A kid-less assertion verifies with the one key that fits.
	f = e.authForm()
	for k, v := range e.parForm(challenge) {
		f[k] = v
	}
	f.Set("client_assertion", sign(t, e.sigKey, jose.ES256, e.assertionClaims(), nil))
	wantStatus(t, e.send(FAPIPARPath, f, e.proof(FAPIPARPath)), 201)
}

func TestFAPIDPoPProofs(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	verifier, challenge := pkce()
	q := e.authorize(e.push(e.parForm(challenge)))
	code := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {fapiTestRedirect}, "code_verifier": {verifier}}
	token := func(proof string) resp {
		f := e.authForm()
		for k, v := range code {
			f[k] = v
		}
		return e.send(FAPITokenPath, f, proof)
	}
	claims := func(edit func(map[string]any)) map[string]any {
		c := e.proofClaims(FAPITokenPath)
		edit(c)
		return c
	}
	for _, tc := range []struct {
		name  string
		proof string
	}{
		{"none", ""},
		{"typ JWT", e.proofWith(e.dpopKey, "JWT", e.proofClaims(FAPITokenPath))},
		{"htm GET", e.proofWith(e.dpopKey, "dpop+jwt", claims(func(c map[string]any) { c["htm"] = "GET" }))},
		{"htu PAR", e.proofWith(e.dpopKey, "dpop+jwt", claims(func(c map[string]any) { c["htu"] = e.base + FAPIPARPath }))},
		{"htu other host", e.proofWith(e.dpopKey, "dpop+jwt", claims(func(c map[string]any) { c["htu"] = "https://bank.example" + FAPITokenPath }))},
		{"old iat", e.proofWith(e.dpopKey, "dpop+jwt", claims(func(c map[string]any) { c["iat"] = e.clock.Now().Add(-2 * time.Minute).Unix() }))},
		{"future iat", e.proofWith(e.dpopKey, "dpop+jwt", claims(func(c map[string]any) { c["iat"] = e.clock.Now().Add(2 * time.Minute).Unix() }))},
		{"no jti", e.proofWith(e.dpopKey, "dpop+jwt", claims(func(c map[string]any) { delete(c, "jti") }))},
		{"no jwk", sign(t, e.dpopKey, jose.ES256, e.proofClaims(FAPITokenPath), (&jose.SignerOptions{}).WithType("dpop+jwt"))},
		{"garbage", "not.a.jws"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOAuthError(t, token(tc.proof), 400, "invalid_dpop_proof")
		})
	}
	// A wrong nonce is challenged; the code is still good after all that.
	bad := e.proofWith(e.dpopKey, "dpop+jwt", claims(func(c map[string]any) { c["nonce"] = "made-up" }))
	wantOAuthError(t, token(bad), 400, "use_dpop_nonce")
	// A proof's jti is single-use.
	p := e.proof(FAPITokenPath)
	wantStatus(t, token(p), 200)
	wantOAuthError(t, token(p), 400, "invalid_dpop_proof")
	// Nonces expire: five minutes on, the old one is challenged.
	e.clock.Advance(6 * time.Minute)
	before := e.s.FAPIStats().NonceChallenges
	e.grant()
	if n := e.s.FAPIStats().NonceChallenges - before; n != 1 {
		t.Fatalf("%d nonce challenges after the nonce expired, want 1 (the PAR's)", n)
	}
}

func TestFAPIAuthorizeEndpoint(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	_, challenge := pkce()
	uri := e.push(e.parForm(challenge))
	q := url.Values{"client_id": {DefaultFAPIClientID}, "request_uri": {uri}}
	// Only client_id and request_uri.
	extra := url.Values{"client_id": {DefaultFAPIClientID}, "request_uri": {uri}, "scope": {"openid"}}
	wantOAuthError(t, e.get(FAPIAuthorizePath+"?"+extra.Encode()), 400, "invalid_request")
	wantOAuthError(t, e.get(FAPIAuthorizePath+"?client_id="+DefaultFAPIClientID), 400, "invalid_request")
	wantOAuthError(t, e.get(FAPIAuthorizePath+"?"+url.Values{"client_id": {"other"}, "request_uri": {uri}}.Encode()), 400, "invalid_request_uri")
	// Single use.
	e.authorize(uri)
	wantOAuthError(t, e.get(FAPIAuthorizePath+"?"+q.Encode()), 400, "invalid_request_uri")
	// 60 s of life.
	uri = e.push(e.parForm(challenge))
	e.clock.Advance(61 * time.Second)
	wantOAuthError(t, e.get(FAPIAuthorizePath+"?"+url.Values{"client_id": {DefaultFAPIClientID}, "request_uri": {uri}}.Encode()), 400, "invalid_request_uri")

	// Denial, with state and iss.
	wantStatus(t, e.sendJSON("/_emulator/fapi/config", `{"deny":true}`), 200)
	form := e.parForm(challenge)
	cb := e.authorize(e.push(form))
	if cb.Get("error") != "access_denied" || cb.Get("state") != form.Get("state") || cb.Get("iss") != e.issuer || cb.Has("code") {
		t.Fatalf("denial %v", cb)
	}
	// Back to approval, as another user; login_hint picks the user too.
	wantStatus(t, e.sendJSON("/_emulator/fapi/config", `{"deny":false,"user":"bob"}`), 200)
	tok, _ := e.grant()
	verifier, challenge := pkce()
	form = e.parForm(challenge)
	form.Set("login_hint", "carol")
	cb = e.authorize(e.push(form))
	r := e.post(FAPITokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Get("code")},
		"redirect_uri": {fapiTestRedirect}, "code_verifier": {verifier}})
	wantStatus(t, r, 200)
	var users []string
	for _, g := range e.s.FAPIGrants() {
		users = append(users, g.User)
	}
	if !slices.Equal(users, []string{"bob", "carol"}) || tok["access_token"] == nil {
		t.Fatalf("grants of %v", users)
	}
	if st := e.s.FAPIStats(); st.Denials != 1 || st.Authorizations != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func (e *fapiEnv) sendJSON(path, body string) resp {
	e.t.Helper()
	req := mustRequest(e.t, "POST", e.base+path, body)
	req.Header.Set("Content-Type", "application/json")
	return e.roundTrip(req)
}
