package fapi_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

const (
	clientID    = "tpp-fapi2"
	redirectURI = "https://app.example/cb"
)

// clock is a settable test clock shared by the client and the fake AS.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeAS is an authorization server for the tests. It checks what the
// client sends with go-jose, not with the code that made it: the client
// assertion (signature by the client's public key, iss, sub, aud = the
// issuer, exp, a fresh jti), DPoP proofs (typ, the header's jwk, htm, htu,
// iat, jti, nonce), dpop_jkt against the proof's key, PKCE S256 and
// redirect_uri; it rotates refresh tokens and treats reuse as theft.
type fakeAS struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string
	clock  *clock

	clientPub crypto.PublicKey
	asKey     *ecdsa.PrivateKey
	asKID     string

	mu sync.Mutex
	// Meta is the metadata document served (nil: 404).
	Meta map[string]any
	// RequireNonce makes PAR and token requests need the server's nonce.
	RequireNonce bool
	nonce        string
	nonceN       int
	// TokenType overrides the token_type answered.
	TokenType string
	// IDClaims changes the ID token's claims before signing.
	IDClaims func(map[string]any)
	// IDKey signs ID tokens instead of the published key.
	IDKey *ecdsa.PrivateKey
	// Hostile answers every PAR, token and revocation request 400 with
	// everything it received echoed in error_description.
	Hostile bool

	jtis     map[string]bool
	pars     map[string]*grant
	codes    map[string]*grant
	refresh  map[string]*grant // live refresh tokens
	spent    map[string]*grant // rotated-away refresh tokens
	revoked  map[string]bool
	hits     map[string]int
	received []string // every secret-looking value the client sent
	lastPAR  url.Values
	n        int
}

// LastPAR is the form of the last pushed request the AS accepted.
func (as *fakeAS) LastPAR() url.Values {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.lastPAR
}

type grant struct {
	form    url.Values // the pushed request
	jkt     string
	dead    bool
	serial  int
	refresh string
}

func newFakeAS(t *testing.T, c *clock, clientPub crypto.PublicKey) *fakeAS {
	t.Helper()
	asKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	as := &fakeAS{t: t, clock: c, clientPub: clientPub, asKey: asKey, asKID: "as-key-1",
		jtis: map[string]bool{}, pars: map[string]*grant{}, codes: map[string]*grant{}, refresh: map[string]*grant{},
		spent: map[string]*grant{}, revoked: map[string]bool{}, hits: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", as.metadata)
	mux.HandleFunc("/par", as.par)
	mux.HandleFunc("/authorize", as.authorize)
	mux.HandleFunc("/token", as.token)
	mux.HandleFunc("/revoke", as.revoke)
	mux.HandleFunc("/jwks", as.jwks)
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	as.issuer = as.srv.URL
	as.Meta = map[string]any{
		"issuer":                                           as.issuer,
		"authorization_endpoint":                           as.issuer + "/authorize",
		"pushed_authorization_request_endpoint":            as.issuer + "/par",
		"token_endpoint":                                   as.issuer + "/token",
		"revocation_endpoint":                              as.issuer + "/revoke",
		"jwks_uri":                                         as.issuer + "/jwks",
		"require_pushed_authorization_requests":            true,
		"authorization_response_iss_parameter_supported":   true,
		"dpop_signing_alg_values_supported":                []string{"ES256", "PS256"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"private_key_jwt", "tls_client_auth"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES256", "PS256"},
	}
	return as
}

func (as *fakeAS) Hits(path string) int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.hits[path]
}

// Received lists the secret values the client sent: codes, verifiers,
// assertions, proofs, refresh tokens, states, nonces.
func (as *fakeAS) Received() []string {
	as.mu.Lock()
	defer as.mu.Unlock()
	return append([]string(nil), as.received...)
}

func (as *fakeAS) random(prefix string) string {
	as.n++
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", prefix, as.n, base64.RawURLEncoding.EncodeToString(b))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (as *fakeAS) metadata(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.hits[r.URL.Path]++
	if as.Meta == nil {
		http.NotFound(w, r)
		return
	}
	writeJSON(w, 200, as.Meta)
}

// begin records the request and checks client authentication and (when
// dpop) the DPoP proof; it returns the proof's key thumbprint, or writes
// the error and returns ok false. Callers hold as.mu.
func (as *fakeAS) begin(w http.ResponseWriter, r *http.Request, dpop bool) (jkt string, ok bool) {
	as.hits[r.URL.Path]++
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", "bad form")
		return "", false
	}
	for _, k := range []string{"client_assertion", "code", "code_verifier", "refresh_token", "token", "state", "nonce", "code_challenge"} {
		if v := r.PostForm.Get(k); v != "" {
			as.received = append(as.received, v)
		}
	}
	if p := r.Header.Get("DPoP"); p != "" {
		as.received = append(as.received, p)
	}
	if as.Hostile {
		echo := r.PostForm.Encode() + " DPoP=" + r.Header.Get("DPoP") + " " + strings.Join(as.received, " ")
		oauthError(w, 400, "invalid_request", "you sent: "+echo)
		return "", false
	}
	if err := as.checkAssertion(r.PostForm); err != nil {
		oauthError(w, 401, "invalid_client", err.Error())
		return "", false
	}
	if !dpop || r.Header.Get("DPoP") == "" {
		return "", true
	}
	jkt, nonce, err := as.checkProof(r)
	if err != nil {
		oauthError(w, 400, "invalid_dpop_proof", err.Error())
		return "", false
	}
	if as.RequireNonce && (as.nonce == "" || nonce != as.nonce) {
		as.nonceN++
		as.nonce = fmt.Sprintf("server-nonce-%d", as.nonceN)
		w.Header().Set("DPoP-Nonce", as.nonce)
		oauthError(w, 400, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
		return "", false
	}
	return jkt, true
}

// checkAssertion verifies the private_key_jwt assertion with go-jose.
func (as *fakeAS) checkAssertion(form url.Values) error {
	if form.Get("client_id") != clientID {
		return fmt.Errorf("unknown client")
	}
	if form.Get("client_assertion_type") != fapi.ClientAssertionType {
		return fmt.Errorf("wrong client_assertion_type")
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.PS256})
	if err != nil {
		return fmt.Errorf("assertion does not parse: %v", err)
	}
	var c jwt.Claims
	if err := tok.Claims(as.clientPub, &c); err != nil {
		return fmt.Errorf("assertion signature: %v", err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: clientID, Subject: clientID, AnyAudience: jwt.Audience{as.issuer}, Time: as.clock.Now()}, 0); err != nil {
		return fmt.Errorf("assertion claims: %v", err)
	}
	if len(c.Audience) != 1 {
		return fmt.Errorf("assertion aud must be the issuer alone")
	}
	if c.ID == "" || as.jtis["a"+c.ID] {
		return fmt.Errorf("assertion jti missing or replayed")
	}
	as.jtis["a"+c.ID] = true
	return nil
}

type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce"`
	ATH   string `json:"ath"`
}

// checkProof verifies a DPoP proof with go-jose as RFC 9449 section 4.3
// says, and returns its key's thumbprint and nonce.
func (as *fakeAS) checkProof(r *http.Request) (jkt, nonce string, err error) {
	if len(r.Header.Values("DPoP")) != 1 {
		return "", "", fmt.Errorf("exactly one DPoP header")
	}
	obj, err := jose.ParseSigned(r.Header.Get("DPoP"), []jose.SignatureAlgorithm{jose.ES256, jose.PS256})
	if err != nil {
		return "", "", fmt.Errorf("proof does not parse: %v", err)
	}
	h := obj.Signatures[0].Protected
	if h.ExtraHeaders["typ"] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return "", "", fmt.Errorf("proof header")
	}
	payload, err := obj.Verify(h.JSONWebKey)
	if err != nil {
		return "", "", fmt.Errorf("proof signature: %v", err)
	}
	var c proofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", "", err
	}
	if c.HTM != r.Method || c.HTU != as.issuer+r.URL.Path || c.ATH != "" {
		return "", "", fmt.Errorf("proof htm/htu/ath")
	}
	if d := as.clock.Now().Unix() - c.IAT; d > 60 || d < -60 {
		return "", "", fmt.Errorf("proof iat")
	}
	if c.JTI == "" || as.jtis["p"+c.JTI] {
		return "", "", fmt.Errorf("proof jti missing or replayed")
	}
	as.jtis["p"+c.JTI] = true
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), c.Nonce, nil
}

func (as *fakeAS) par(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	jkt, ok := as.begin(w, r, true)
	if !ok {
		return
	}
	f := r.PostForm
	if f.Get("response_type") != "code" || f.Get("redirect_uri") != redirectURI || f.Get("code_challenge_method") != "S256" ||
		f.Get("code_challenge") == "" || f.Get("state") == "" {
		oauthError(w, 400, "invalid_request", "PAR parameters")
		return
	}
	if jkt != "" && f.Get("dpop_jkt") != jkt {
		oauthError(w, 400, "invalid_request", "dpop_jkt is not the proof's key")
		return
	}
	uri := "urn:ietf:params:oauth:request_uri:" + as.random("par")
	as.pars[uri] = &grant{form: f}
	as.lastPAR = f
	writeJSON(w, http.StatusCreated, map[string]any{"request_uri": uri, "expires_in": 60})
}

// authorize is the user approving at once: a redirect with code, state
// and iss; error=access_denied when the request has deny=1.
func (as *fakeAS) authorize(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.hits[r.URL.Path]++
	q := r.URL.Query()
	g := as.pars[q.Get("request_uri")]
	if g == nil || q.Get("client_id") != clientID || len(q) != 2 {
		http.Error(w, "unknown request_uri", 400)
		return
	}
	delete(as.pars, q.Get("request_uri"))
	cb := url.Values{"state": {g.form.Get("state")}, "iss": {as.issuer}}
	if g.form.Get("deny") == "1" {
		cb.Set("error", "access_denied")
		cb.Set("error_description", "The user said no")
	} else {
		code := as.random("code")
		as.codes[code] = g
		cb.Set("code", code)
	}
	http.Redirect(w, r, g.form.Get("redirect_uri")+"?"+cb.Encode(), http.StatusSeeOther)
}

func (as *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	jkt, ok := as.begin(w, r, true)
	if !ok {
		return
	}
	f := r.PostForm
	var g *grant
	switch f.Get("grant_type") {
	case "authorization_code":
		g = as.codes[f.Get("code")]
		if g == nil {
			oauthError(w, 400, "invalid_grant", "unknown or used code")
			return
		}
		delete(as.codes, f.Get("code"))
		if f.Get("redirect_uri") != g.form.Get("redirect_uri") {
			oauthError(w, 400, "invalid_grant", "redirect_uri differs")
			return
		}
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.form.Get("code_challenge") {
			oauthError(w, 400, "invalid_grant", "PKCE verification failed")
			return
		}
		if g.form.Get("dpop_jkt") != jkt {
			oauthError(w, 400, "invalid_dpop_proof", "not the key named at PAR")
			return
		}
		g.jkt = jkt
	case "refresh_token":
		rt := f.Get("refresh_token")
		if old := as.spent[rt]; old != nil {
			old.dead = true // reuse: the whole grant goes
			oauthError(w, 400, "invalid_grant", "refresh token reused; grant revoked")
			return
		}
		g = as.refresh[rt]
		if g == nil || g.dead || as.revoked[rt] {
			oauthError(w, 400, "invalid_grant", "unknown or revoked refresh token")
			return
		}
		if g.jkt != jkt {
			oauthError(w, 400, "invalid_dpop_proof", "not the grant's key")
			return
		}
		delete(as.refresh, rt)
		as.spent[rt] = g
	default:
		oauthError(w, 400, "unsupported_grant_type", "")
		return
	}
	g.serial++
	rt := as.random("refresh")
	g.refresh = rt
	as.refresh[rt] = g
	tt := "DPoP"
	if jkt == "" {
		tt = "Bearer"
	}
	if as.TokenType != "" {
		tt = as.TokenType
	}
	resp := map[string]any{"access_token": as.random("access"), "token_type": tt, "expires_in": 300,
		"refresh_token": rt, "refresh_token_expires_in": "7776000", "scope": g.form.Get("scope")}
	if ad := g.form.Get("authorization_details"); ad != "" {
		resp["authorization_details"] = json.RawMessage(ad)
	}
	if strings.Contains(g.form.Get("scope"), "openid") && f.Get("grant_type") == "authorization_code" {
		resp["id_token"] = as.idToken(g.form.Get("nonce"))
	}
	writeJSON(w, 200, resp)
}

// idToken signs an ID token with the AS key (or IDKey), ES256, kid asKID.
func (as *fakeAS) idToken(nonce string) string {
	now := as.clock.Now()
	claims := map[string]any{"iss": as.issuer, "sub": "alice", "aud": clientID, "nonce": nonce,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "auth_time": now.Unix()}
	if as.IDClaims != nil {
		as.IDClaims(claims)
	}
	key := as.asKey
	if as.IDKey != nil {
		key = as.IDKey
	}
	return signJWT(as.t, key, as.asKID, claims)
}

func signJWT(t *testing.T, key crypto.Signer, kid string, claims any) string {
	t.Helper()
	alg := jose.ES256
	if _, ok := key.(*ecdsa.PrivateKey); !ok {
		alg = jose.PS256
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (as *fakeAS) revoke(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if _, ok := as.begin(w, r, false); !ok {
		return
	}
	if r.PostForm.Get("token_type_hint") != "refresh_token" {
		oauthError(w, 400, "invalid_request", "hint")
		return
	}
	rt := r.PostForm.Get("token")
	as.revoked[rt] = true
	if g := as.refresh[rt]; g != nil {
		g.dead = true
	}
	w.WriteHeader(200)
}

func (as *fakeAS) jwks(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.hits[r.URL.Path]++
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &as.asKey.PublicKey, KeyID: as.asKID, Algorithm: "ES256", Use: "sig"},
	}}
	writeJSON(w, 200, set)
}

// world is a client with a private_key_jwt key and a DPoP key, and the
// fake AS that knows it.
type world struct {
	as      *fakeAS
	clock   *clock
	sig     *keyring.Key
	dpopKey *keyring.Key
	meta    *fapi.Metadata
	client  *fapi.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{clock: &clock{now: t0}, sig: testKey(t, keyring.TypeECP256, 0), dpopKey: testKey(t, keyring.TypeECP256, 1)}
	pub, err := w.sig.Latest().Public()
	if err != nil {
		t.Fatal(err)
	}
	w.as = newFakeAS(t, w.clock, pub)
	meta, err := fapi.Discover(t.Context(), noRedirects(), w.as.issuer, w.clock.Now())
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	w.meta = meta
	w.client = &fapi.Client{HTTP: noRedirects(), Metadata: meta, ClientID: clientID,
		Auth: fapi.PrivateKeyJWT{ClientID: clientID, Issuer: w.as.issuer, Signer: w.sig},
		DPoP: fapi.KeyDPoP{Key: w.dpopKey, Now: w.clock.Now}, Now: w.clock.Now}
	return w
}

// noRedirects is an *http.Client that never follows a redirect, as the
// plugin's is.
func noRedirects() *http.Client {
	return &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// approve plays the user's browser: it opens the authorization URL and
// returns the redirect the app receives.
func approve(t *testing.T, authURL string) string {
	t.Helper()
	resp, err := noRedirects().Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

var (
	keysMu sync.Mutex
	keys   = map[string]*keyring.Key{}
)

// testKey returns a key of type typ, the n-th of the test binary's.
func testKey(t *testing.T, typ string, n int) *keyring.Key {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	name := fmt.Sprintf("%s/%d", typ, n)
	if k := keys[name]; k != nil {
		return k
	}
	k, err := keyring.Generate(typ, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	keys[name] = k
	return k
}
