package emulator

import (
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// FAPI is the emulator's FAPI 2.0 authorization server, served under
// FAPIPrefix beside the four banks. It follows the FAPI 2.0 Security
// Profile for an authorization server: metadata (RFC 8414, OpenID Connect
// Discovery), pushed authorization requests only (RFC 9126), PKCE S256
// (RFC 7636), private_key_jwt client authentication with the issuer as
// audience (RFC 7523), DPoP-bound tokens with server nonces (RFC 9449),
// the iss authorization response parameter (RFC 9207), rich authorization
// requests (RFC 9396), refresh token rotation with reuse detection and
// revocation (RFC 7009). Its user approves every request at once (or
// denies it, see SetFAPIDeny): there is no login page.
//
// The name is also a provider name for FailNext, SetLatency, SetTTL,
// Stats and the admin fail, latency and ttl endpoints; FAPIStats has the
// server's own counters.
const FAPI = "fapi"

// Paths of the authorization server, relative to the server root.
const (
	// FAPIPrefix is the issuer's path: the issuer is the emulator's base URL
	// followed by it.
	FAPIPrefix = "/fapi"
	// FAPIOAuthMetadataPath is the RFC 8414 metadata document, the
	// well-known segment inserted before the issuer's path (section 3.1).
	FAPIOAuthMetadataPath = "/.well-known/oauth-authorization-server" + FAPIPrefix
	// FAPIOIDCMetadataPath is the OpenID Connect Discovery document.
	FAPIOIDCMetadataPath = FAPIPrefix + "/.well-known/openid-configuration"
	// FAPIPARPath is the pushed authorization request endpoint (POST).
	FAPIPARPath = FAPIPrefix + "/par"
	// FAPIAuthorizePath is the authorization endpoint (GET).
	FAPIAuthorizePath = FAPIPrefix + "/authorize"
	// FAPITokenPath is the token endpoint (POST).
	FAPITokenPath = FAPIPrefix + "/token"
	// FAPIRevokePath is the revocation endpoint (POST).
	FAPIRevokePath = FAPIPrefix + "/revoke"
	// FAPIUserInfoPath is a protected resource: OpenID Connect's UserInfo
	// endpoint, which takes a DPoP-bound access token (GET).
	FAPIUserInfoPath = FAPIPrefix + "/userinfo"
	// FAPIJWKSPath is the server's JWK Set, with the key that signs ID
	// tokens and access tokens (GET).
	FAPIJWKSPath = FAPIPrefix + "/jwks"
)

// Defaults of FAPIOptions.
const (
	DefaultFAPIClientID = "emu-fapi-client"
	DefaultFAPIUser     = "alice"
	DefaultFAPIGrantTTL = 90 * 24 * time.Hour
)

// DefaultFAPIRedirectURIs are the default client's redirect URIs.
var DefaultFAPIRedirectURIs = []string{"http://127.0.0.1:8400/cb", "https://app.example/cb"}

// DefaultFAPIScopes are the scopes the server knows by default.
var DefaultFAPIScopes = []string{"openid", "offline_access", "accounts", "payments", "profile"}

// Lifetimes and windows of the authorization server.
const (
	fapiRequestURITTL = 60 * time.Second // a pushed request's life (RFC 9126 section 2.2)
	fapiCodeTTL       = 60 * time.Second // an authorization code's life
	fapiAssertionMax  = 10 * time.Minute // how far in the future a client assertion's exp may be
	fapiSkew          = 60 * time.Second // clock skew allowed on iat, nbf and exp
	fapiProofWindow   = 60 * time.Second // how old (or early) a DPoP proof's iat may be
	fapiNonceRotate   = 60 * time.Second // a fresh DPoP nonce is handed out this often
	fapiNonceLife     = 5 * time.Minute  // how long a DPoP nonce is accepted
	fapiJWKSRefetch   = 10 * time.Second // the soonest a client's jwks_uri is fetched again for an unknown kid
	fapiJWKSMaxAge    = 5 * time.Minute  // a client's fetched JWK Set is fetched again when older
)

// FAPIClient registers a client of the authorization server. Its public
// keys come from JWKSURI (fetched when first needed and cached; e.g.
// Vault's unauthenticated bankauth/jwks/<key>) or from JWKS, an inline JWK
// Set; JWKS wins when both are set.
type FAPIClient struct {
	ID           string          `json:"client_id"`
	RedirectURIs []string        `json:"redirect_uris"`
	JWKSURI      string          `json:"jwks_uri,omitempty"`
	JWKS         json.RawMessage `json:"jwks,omitempty"`
}

// FAPIOptions configure the authorization server.
type FAPIOptions struct {
	// PublicURL is the emulator's base URL as clients reach it (e.g.
	// http://127.0.0.1:8300); the issuer is PublicURL + FAPIPrefix. ""
	// derives it from each request's Host (and TLS).
	PublicURL string
	// Client is the client registered at start. An empty ID means
	// DefaultFAPIClientID, no redirect URIs DefaultFAPIRedirectURIs.
	Client FAPIClient
	// User is who approves: the sub of the tokens. "" means
	// DefaultFAPIUser. A pushed request's login_hint overrides it.
	User string
	// Deny makes the user refuse every request (access_denied).
	Deny bool
	// GrantTTL is how long a grant (the user's consent, and so its refresh
	// tokens) lives; 0 means DefaultFAPIGrantTTL.
	GrantTTL time.Duration
	// Scopes are the scopes the server accepts; nil means DefaultFAPIScopes.
	Scopes []string
	// NoDPoPNonce turns off the DPoP nonce challenges.
	NoDPoPNonce bool
	// NoRefreshRotation keeps a grant's refresh token across refreshes
	// (the answer has no refresh_token), as the FAPI 2.0 Security Profile
	// recommends; by default each refresh rotates it, with reuse detection.
	NoRefreshRotation bool
}

// FAPIStats are the authorization server's counters.
type FAPIStats struct {
	PAR             int `json:"par"`              // pushed requests accepted
	Authorizations  int `json:"authorizations"`   // requests the user approved (codes issued)
	Denials         int `json:"denials"`          // requests the user denied
	Exchanges       int `json:"exchanges"`        // codes exchanged for tokens
	Refreshes       int `json:"refreshes"`        // refresh grants answered with tokens
	Revocations     int `json:"revocations"`      // revocation requests answered 200
	Withdrawals     int `json:"withdrawals"`      // grants withdrawn by WithdrawFAPIGrants
	ReuseDetected   int `json:"reuse_detected"`   // replayed codes and rotated refresh tokens that revoked a grant
	NonceChallenges int `json:"nonce_challenges"` // use_dpop_nonce answers
	UserInfo        int `json:"userinfo"`         // resource requests answered 200
	Failed          int `json:"failed"`           // requests answered with an error (incl. injected)
	Total           int `json:"total"`            // all requests to the server's endpoints
}

// fapiRequest is a pushed authorization request.
type fapiRequest struct {
	clientID, redirectURI, scope, state, nonce, challenge, jkt, user string
	details, claims                                                  json.RawMessage
	exp                                                              time.Time
}

// fapiCode is an authorization code; a used one is kept until it expires
// so that a replay revokes the grant it made.
type fapiCode struct {
	req   *fapiRequest
	exp   time.Time
	used  bool
	grant string
}

// fapiGrant is a user's consent to a client.
type fapiGrant struct {
	id, clientID, user, scope string
	details                   json.RawMessage
	created, exp              time.Time
	revoked                   bool
}

// fapiRefresh is a refresh token; a rotated one is kept for reuse detection.
type fapiRefresh struct {
	grant   string
	rotated bool
}

// fapiAccess is an access token.
type fapiAccess struct {
	grant, jkt string
	exp        time.Time
}

// fapiClient is a registered client with its keys.
type fapiClient struct {
	FAPIClient
	keyMu     sync.Mutex        // held while the keys are fetched
	keys      []jose.JSONWebKey // inline, or fetched from JWKSURI
	fetchedAt time.Time
	fetched   bool
}

// fapiState is the authorization server's state, under mu.
type fapiState struct {
	mu         sync.Mutex
	opts       FAPIOptions
	signer     *ecdsa.PrivateKey
	kid        string
	clients    map[string]*fapiClient
	user       string
	deny       bool
	noNonce    bool
	noRotation bool
	requests   map[string]*fapiRequest // request_uri ->
	codes      map[string]*fapiCode
	grants     map[string]*fapiGrant
	refresh    map[string]*fapiRefresh
	access     map[string]*fapiAccess
	assertions map[string]time.Time // client_id + jti -> when it may be forgotten
	proofs     map[string]time.Time // jkt + jti -> when it may be forgotten
	nonces     map[string]time.Time // DPoP nonce -> when issued
	nonce      string
	nonceAt    time.Time
	stats      FAPIStats
}

// reset empties the server's requests, codes, grants, tokens, replay
// caches and counters, and restores the user, the deny knob and the DPoP
// nonce and refresh rotation settings to the options'. Registered clients are kept.
func (st *fapiState) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.user, st.deny, st.noNonce, st.noRotation = st.opts.User, st.opts.Deny, st.opts.NoDPoPNonce, st.opts.NoRefreshRotation
	st.requests, st.codes, st.grants = map[string]*fapiRequest{}, map[string]*fapiCode{}, map[string]*fapiGrant{}
	st.refresh, st.access = map[string]*fapiRefresh{}, map[string]*fapiAccess{}
	st.assertions, st.proofs, st.nonces = map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	st.nonce, st.nonceAt, st.stats = "", time.Time{}, FAPIStats{}
}

// sweep forgets what has expired; called with mu held.
func (st *fapiState) sweep(now time.Time) {
	for k, r := range st.requests {
		if !now.Before(r.exp) {
			delete(st.requests, k)
		}
	}
	for k, c := range st.codes {
		if !now.Before(c.exp) {
			delete(st.codes, k)
		}
	}
	for k, a := range st.access {
		if !now.Before(a.exp) {
			delete(st.access, k)
		}
	}
	for _, m := range []map[string]time.Time{st.assertions, st.proofs} {
		for k, until := range m {
			if now.After(until) {
				delete(m, k)
			}
		}
	}
	for k, at := range st.nonces {
		if now.Sub(at) >= fapiNonceLife {
			delete(st.nonces, k)
		}
	}
	for _, g := range st.grants {
		if !now.Before(g.exp) {
			st.revokeGrant(g)
		}
	}
}

// fapiError is an OAuth error answer (RFC 6749 section 5.2).
type fapiError struct {
	status      int
	code, desc  string
	nonceNeeded bool // answer with a fresh DPoP-Nonce (use_dpop_nonce)
}

func badRequest(code, desc string) *fapiError {
	return &fapiError{status: http.StatusBadRequest, code: code, desc: desc}
}

func invalidClient(desc string) *fapiError {
	return &fapiError{status: http.StatusUnauthorized, code: "invalid_client", desc: desc}
}

// fapiFail answers e, with a fresh DPoP nonce when it is a nonce challenge.
func (s *Server) fapiFail(w http.ResponseWriter, e *fapiError) {
	if e.nonceNeeded {
		s.fapi.mu.Lock()
		s.fapi.stats.NonceChallenges++
		n := s.fapi.currentNonce(s.now())
		s.fapi.mu.Unlock()
		w.Header().Set("DPoP-Nonce", n)
	}
	s.fail(w, FAPI, e.status, e.code, e.desc)
}

// fapiForm reads a POST body of application/x-www-form-urlencoded
// parameters, none given twice (RFC 6749 section 3.2).
func fapiForm(r *http.Request, body []byte) (url.Values, *fapiError) {
	if !mediaTypeIs(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return nil, badRequest("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	}
	if r.URL.RawQuery != "" {
		return nil, badRequest("invalid_request", "parameters must be in the body, not the query")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("invalid_request", "the body is not valid form encoding")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, badRequest("invalid_request", "parameter "+k+" is given more than once")
		}
	}
	return form, nil
}
