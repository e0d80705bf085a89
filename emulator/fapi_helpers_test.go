package emulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The tests below are a client written independently of package fapi:
// go-jose signs the client assertions and DPoP proofs.

const fapiTestRedirect = "https://app.example/cb"

// fapiEnv is an emulator with the authorization server, a client key
// registered inline and a DPoP key.
type fapiEnv struct {
	t       *testing.T
	s       *Server
	base    string // the emulator's base URL
	issuer  string
	clock   *fakeClock
	sigKey  *ecdsa.PrivateKey
	sigKID  string
	dpopKey *ecdsa.PrivateKey
	nonce   string // the server's latest DPoP nonce
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func jwksOf(t *testing.T, kid string, pub crypto.PublicKey) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Use: "sig", Algorithm: "ES256"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newFAPIEnv(t *testing.T, o FAPIOptions) *fapiEnv {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	e := &fapiEnv{t: t, clock: clock, sigKey: newKey(t), sigKID: "client-key-1", dpopKey: newKey(t)}
	if o.Client.ID == "" && o.Client.JWKSURI == "" && o.Client.JWKS == nil {
		o.Client.JWKS = jwksOf(t, e.sigKID, &e.sigKey.PublicKey)
	}
	e.s = New(Options{Now: clock.Now, FAPI: o})
	ts := httptest.NewServer(e.s)
	t.Cleanup(ts.Close)
	e.base, e.issuer = ts.URL, ts.URL+FAPIPrefix
	return e
}

// sign makes a compact JWS of claims with key, adding header fields.
func sign(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, claims any, opts *jose.SignerOptions) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// assertionClaims are a fresh, valid client assertion's claims.
func (e *fapiEnv) assertionClaims() map[string]any {
	now := e.clock.Now().Unix()
	return map[string]any{"iss": DefaultFAPIClientID, "sub": DefaultFAPIClientID, "aud": e.issuer,
		"jti": randString(12), "iat": now, "exp": now + 60}
}

// assertion signs claims with the client's key.
func (e *fapiEnv) assertion(claims map[string]any) string {
	return sign(e.t, e.sigKey, jose.ES256, claims, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", e.sigKID))
}

// authForm is client_id with a fresh valid client assertion.
func (e *fapiEnv) authForm() url.Values {
	return url.Values{"client_id": {DefaultFAPIClientID}, "client_assertion_type": {clientAssertionType},
		"client_assertion": {e.assertion(e.assertionClaims())}}
}

// proofClaims are a fresh, valid DPoP proof's claims for POST path.
func (e *fapiEnv) proofClaims(path string) map[string]any {
	c := map[string]any{"jti": randString(12), "htm": "POST", "htu": e.base + path, "iat": e.clock.Now().Unix()}
	if e.nonce != "" {
		c["nonce"] = e.nonce
	}
	return c
}

// proof signs DPoP claims with key, its public key in the jwk header.
func (e *fapiEnv) proofWith(key *ecdsa.PrivateKey, typ string, claims map[string]any) string {
	return sign(e.t, key, jose.ES256, claims, (&jose.SignerOptions{EmbedJWK: true}).WithType(jose.ContentType(typ)))
}

func (e *fapiEnv) proof(path string) string {
	return e.proofWith(e.dpopKey, "dpop+jwt", e.proofClaims(path))
}

func thumbprint(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// send posts form to path with a DPoP header (none when proof is "") and
// remembers the server's nonce.
func (e *fapiEnv) send(path string, form url.Values, proof string) resp {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return e.roundTrip(req)
}

func (e *fapiEnv) roundTrip(req *http.Request) resp {
	e.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if n := res.Header.Get("DPoP-Nonce"); n != "" {
		e.nonce = n
	}
	return resp{res.StatusCode, res.Header, b}
}

// post sends form with client authentication and a DPoP proof, answering
// a nonce challenge once, as a client does.
func (e *fapiEnv) post(path string, form url.Values) resp {
	e.t.Helper()
	for try := 0; ; try++ {
		f := e.authForm()
		for k, v := range form {
			f[k] = v
		}
		r := e.send(path, f, e.proof(path))
		if try == 0 && r.status == 400 && strings.Contains(string(r.body), "use_dpop_nonce") {
			continue
		}
		return r
	}
}

// pkce is a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = randString(32)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// parForm is a valid pushed request's parameters with challenge.
func (e *fapiEnv) parForm(challenge string) url.Values {
	return url.Values{"response_type": {"code"}, "redirect_uri": {fapiTestRedirect}, "scope": {"openid accounts offline_access"},
		"state": {"st-" + randString(8)}, "nonce": {"n-" + randString(8)}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}, "dpop_jkt": {thumbprint(e.t, &e.dpopKey.PublicKey)},
		"authorization_details": {`[{"type":"account_information","actions":["read"]}]`}}
}

// push pushes form and returns the request_uri.
func (e *fapiEnv) push(form url.Values) string {
	e.t.Helper()
	r := e.post(FAPIPARPath, form)
	wantStatus(e.t, r, 201)
	m := r.json(e.t)
	uri, _ := m["request_uri"].(string)
	if !strings.HasPrefix(uri, requestURIPrefix) || m["expires_in"] != 60.0 {
		e.t.Fatalf("PAR answer %s", r.body)
	}
	return uri
}

// authorize opens the authorization URL as the user's browser and returns
// the redirect's query.
func (e *fapiEnv) authorize(requestURI string) url.Values {
	e.t.Helper()
	r := e.get(FAPIAuthorizePath + "?" + url.Values{"client_id": {DefaultFAPIClientID}, "request_uri": {requestURI}}.Encode())
	wantStatus(e.t, r, 303)
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil || !strings.HasPrefix(u.String(), fapiTestRedirect+"?") {
		e.t.Fatalf("redirect to %q", r.header.Get("Location"))
	}
	return u.Query()
}

func (e *fapiEnv) get(pathAndQuery string) resp {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+pathAndQuery, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.roundTrip(req)
}

// grant runs PAR, authorization and the code exchange; it returns the
// token answer and the pushed form.
func (e *fapiEnv) grant() (map[string]any, url.Values) {
	e.t.Helper()
	verifier, challenge := pkce()
	form := e.parForm(challenge)
	q := e.authorize(e.push(form))
	r := e.post(FAPITokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {fapiTestRedirect}, "code_verifier": {verifier}})
	wantStatus(e.t, r, 200)
	return r.json(e.t), form
}

// refresh sends a refresh grant.
func (e *fapiEnv) refresh(rt string) resp {
	e.t.Helper()
	return e.post(FAPITokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// wantOAuthError checks an OAuth error answer.
func wantOAuthError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	var m map[string]any
	if r.status != status || json.Unmarshal(r.body, &m) != nil || m["error"] != code {
		t.Fatalf("got %d %s, want %d error=%s", r.status, r.body, status, code)
	}
}

func mustRequest(t *testing.T, method, target, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}
