package oidcop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// A hand-written FAPI 2.0 client (go-jose for every signature) runs the
// whole flow against the server, so the harness is known to enforce what
// the consent tests rely on: PAR required, PKCE, DPoP with nonces,
// private_key_jwt with the issuer as audience, RFC 9207's iss, rotating
// refresh tokens with reuse detection, and withdrawal.
func TestFAPI2FlowAgainstOIDCProvider(t *testing.T) {
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &clientKey.PublicKey, Algorithm: "ES256", Use: "sig", KeyID: "c1"}}})
	op, err := Start(Options{FAPI: "2.0", DPoPNonce: true, Clients: []Client{{
		ClientID: "tpp", RedirectURIs: []string{"https://app.example/cb"}, TokenEndpointAuthMethod: "private_key_jwt",
		TokenEndpointAuthSigningAlg: "ES256", JWKS: pub, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, DPoPBoundAccessTokens: true, IDTokenSignedResponseAlg: "ES256",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(op.Log())
		}
		op.Close()
	})
	c := &fapiClient{t: t, op: op, key: clientKey, dpop: dpopKey}
	var meta struct {
		PAR, Token, Authz string
		Iss               bool `json:"authorization_response_iss_parameter_supported"`
	}
	c.getJSON(op.Issuer+"/.well-known/openid-configuration", &meta)
	var raw map[string]any
	c.getJSON(op.Issuer+"/.well-known/openid-configuration", &raw)
	meta.PAR, meta.Token, meta.Authz = raw["pushed_authorization_request_endpoint"].(string), raw["token_endpoint"].(string), raw["authorization_endpoint"].(string)
	if !meta.Iss || raw["require_pushed_authorization_requests"] != true {
		t.Fatalf("metadata lacks RFC 9207 iss or required PAR: %v", raw)
	}

	// Without PAR the authorization endpoint refuses.
	if code, _ := c.authorize(meta.Authz+"?client_id=tpp&response_type=code&redirect_uri=https://app.example/cb", ""); code != "" {
		t.Fatal("authorization without PAR succeeded")
	}
	verifier := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("v", 40)))
	challenge := sha256.Sum256([]byte(verifier))
	form := url.Values{"response_type": {"code"}, "client_id": {"tpp"}, "redirect_uri": {"https://app.example/cb"},
		"scope": {"openid offline_access accounts"}, "state": {"st-1"}, "nonce": {"n-1"}, "prompt": {"consent"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"}}
	// FAPI 2.0: a client assertion's audience is the issuer, not the
	// endpoint it is sent to.
	c.aud = meta.PAR
	if status, out := c.post(meta.PAR, form); status != 401 || out["error"] != "invalid_client" {
		t.Fatalf("assertion with the endpoint as audience: %d %v", status, out)
	}
	c.aud = ""
	status, par := c.post(meta.PAR, form)
	if status != 201 {
		t.Fatalf("PAR: %d %v", status, par)
	}
	code, iss := c.authorize(meta.Authz+"?client_id=tpp&request_uri="+url.QueryEscape(par["request_uri"].(string)), "")
	if code == "" || iss != op.Issuer {
		t.Fatalf("authorization: code %q iss %q", code, iss)
	}
	status, tok := c.post(meta.Token, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}})
	if status != 200 || tok["token_type"] != "DPoP" || tok["refresh_token"] == nil || tok["id_token"] == nil {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	rt1 := tok["refresh_token"].(string)
	status, tok2 := c.post(meta.Token, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	if status != 200 || tok2["refresh_token"] == rt1 {
		t.Fatalf("refresh did not rotate: %d %v", status, tok2)
	}
	// Reuse of the rotated refresh token revokes the grant: the new one
	// stops working too.
	if status, _ := c.post(meta.Token, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}); status != 400 {
		t.Fatalf("reuse of a rotated refresh token: %d", status)
	}
	if status, _ := c.post(meta.Token, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok2["refresh_token"].(string)}}); status != 400 {
		t.Fatalf("refresh after reuse detection: %d", status)
	}

	// A code sent twice is refused (and its grant revoked).
	if status, again := c.post(meta.Token, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}}); status != 400 || again["error"] != "invalid_grant" {
		t.Fatalf("code replay: %d %v", status, again)
	}

	// Denial, and withdrawal at the bank.
	form.Set("state", "st-2")
	_, par = c.post(meta.PAR, form)
	if code, _ := c.authorize(meta.Authz+"?client_id=tpp&request_uri="+url.QueryEscape(par["request_uri"].(string)), "deny"); code != "" || c.lastError != "access_denied" {
		t.Fatalf("denial: code %q error %q", code, c.lastError)
	}
	form.Set("state", "st-3")
	_, par = c.post(meta.PAR, form)
	code, _ = c.authorize(meta.Authz+"?client_id=tpp&request_uri="+url.QueryEscape(par["request_uri"].(string)), "")
	_, tok = c.post(meta.Token, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {verifier}})
	if err := op.Withdraw("alice"); err != nil {
		t.Fatal(err)
	}
	if status, after := c.post(meta.Token, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}); status != 400 || after["error"] != "invalid_grant" {
		t.Fatalf("refresh after withdrawal: %d %v", status, after)
	}
}

// fapiClient is the test's own client: private_key_jwt and DPoP by go-jose.
type fapiClient struct {
	t         *testing.T
	op        *Server
	key, dpop *ecdsa.PrivateKey
	aud       string // the client assertion's aud; the issuer when empty
	nonce     string
	lastError string
}

func (c *fapiClient) getJSON(u string, v any) {
	resp, err := http.Get(u)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		c.t.Fatal(err)
	}
}

func (c *fapiClient) sign(key *ecdsa.PrivateKey, typ string, embed bool, claims any) string {
	opts := (&jose.SignerOptions{EmbedJWK: embed}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// post sends a form with client authentication and a DPoP proof, once
// more with the server's nonce when it asks for one.
func (c *fapiClient) post(endpoint string, form url.Values) (int, map[string]any) {
	for attempt := 0; ; attempt++ {
		now := time.Now()
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("client_id", "tpp")
		if c.aud == "" {
			c.aud = c.op.Issuer
		}
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		f.Set("client_assertion", c.sign(c.key, "JWT", false, map[string]any{"iss": "tpp", "sub": "tpp", "aud": c.aud,
			"jti": fmt.Sprint(now.UnixNano(), attempt), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()}))
		proof := map[string]any{"jti": fmt.Sprint("p", now.UnixNano(), attempt), "htm": "POST", "htu": endpoint, "iat": now.Unix()}
		if c.nonce != "" {
			proof["nonce"] = c.nonce
		}
		req, _ := http.NewRequest("POST", endpoint, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("DPoP", c.sign(c.dpop, "dpop+jwt", true, proof))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			c.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := resp.Header.Get("DPoP-Nonce"); n != "" {
			c.nonce = n
		}
		var out map[string]any
		_ = json.Unmarshal(body, &out)
		if out["error"] == "use_dpop_nonce" && attempt == 0 {
			continue
		}
		return resp.StatusCode, out
	}
}

// authorize follows an authorization URL as the automated user's browser
// and returns the code and iss of the redirect to the client.
func (c *fapiClient) authorize(u, decision string) (code, iss string) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), "https://app.example/") {
			return http.ErrUseLastResponse
		}
		if decision != "" {
			req.Header.Set("X-Test-Decision", decision)
		}
		return nil
	}}
	resp, err := hc.Get(u)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), "https://app.example/cb") {
		c.lastError = ""
		return "", ""
	}
	q := loc.Query()
	c.lastError = q.Get("error")
	return q.Get("code"), q.Get("iss")
}
