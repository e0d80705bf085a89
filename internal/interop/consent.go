package interop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/storage"
	"github.com/ory/fosite/token/jwt"
)

// ConsentClient registers a confidential client of the user-consent flow:
// private_key_jwt with PublicKey and SigningAlg, one redirect URI.
type ConsentClient struct {
	ID          string
	PublicKey   crypto.PublicKey
	KeyID       string
	SigningAlg  string // ES256 or PS256
	RedirectURI string
	Scopes      []string
}

// ConsentServer is fosite as an authorization server for the authorization
// code flow with PAR (RFC 9126), PKCE (enforced, S256), OpenID Connect ID
// tokens (ES256), refresh token rotation and revocation (RFC 7009), on
// loopback plain HTTP. Client assertions must be addressed to the issuer.
// Its user approves every request at once as Subject. fosite has no
// metadata endpoint, no DPoP and no RFC 9207 iss in the authorization
// response; the RFC 8414 document served here says so by leaving those
// out.
type ConsentServer struct {
	Issuer  string // http://127.0.0.1:port
	Subject string // the user who approves

	srv      *httptest.Server
	store    *storage.MemoryStore
	provider fosite.OAuth2Provider
	key      *ecdsa.PrivateKey
	keyID    string
	mu       sync.Mutex
	hits     map[string]int
}

// Consent endpoints' paths.
const (
	ConsentPathPAR       = "/oauth2/par"
	ConsentPathAuthorize = "/oauth2/auth"
	ConsentPathToken     = "/oauth2/token"
	ConsentPathRevoke    = "/oauth2/revoke"
	ConsentPathJWKS      = "/jwks.json"
)

// StartConsentServer runs a ConsentServer whose user is subject.
func StartConsentServer(subject string) (*ConsentServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	s := &ConsentServer{Subject: subject, store: storage.NewMemoryStore(), key: key, keyID: "fosite-idtoken-1", hits: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server", s.count(s.metadata))
	mux.HandleFunc(ConsentPathPAR, s.count(s.par))
	mux.HandleFunc(ConsentPathAuthorize, s.count(s.authorize))
	mux.HandleFunc(ConsentPathToken, s.count(s.token))
	mux.HandleFunc(ConsentPathRevoke, s.count(s.revoke))
	mux.HandleFunc(ConsentPathJWKS, s.count(s.jwks))
	s.srv = httptest.NewServer(mux)
	s.Issuer = s.srv.URL

	cfg := &fosite.Config{
		AccessTokenLifespan:             10 * time.Minute,
		RefreshTokenLifespan:            time.Hour,
		AuthorizeCodeLifespan:           5 * time.Minute,
		IDTokenLifespan:                 5 * time.Minute,
		IDTokenIssuer:                   s.Issuer,
		GlobalSecret:                    []byte("bankauth-interop-consent-secret!"),
		TokenURL:                        s.Issuer, // the audience fosite wants in client assertions
		ScopeStrategy:                   fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:        fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCE:                     true,
		PushedAuthorizeRequestURIPrefix: "urn:ietf:params:oauth:request_uri:",
		PushedAuthorizeContextLifespan:  time.Minute,
		IsPushedAuthorizeEnforced:       true,
	}
	keyGetter := func(context.Context) (interface{}, error) { return key, nil }
	strategy := &compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(cfg),
		OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(keyGetter, cfg),
		Signer:                     &jwt.DefaultSigner{GetPrivateKey: keyGetter},
	}
	s.provider = compose.Compose(cfg, s.store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	return s, nil
}

// Close stops the server.
func (s *ConsentServer) Close() { s.srv.Close() }

// Register adds a client.
func (s *ConsentServer) Register(c ConsentClient) {
	oc := &fosite.DefaultOpenIDConnectClient{
		DefaultClient: &fosite.DefaultClient{ID: c.ID, RedirectURIs: []string{c.RedirectURI},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}, Scopes: c.Scopes},
		JSONWebKeys:                       &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: c.PublicKey, KeyID: c.KeyID, Algorithm: c.SigningAlg, Use: "sig"}}},
		TokenEndpointAuthMethod:           "private_key_jwt",
		TokenEndpointAuthSigningAlgorithm: c.SigningAlg,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.Clients[c.ID] = oc
}

// Hits counts the requests to path.
func (s *ConsentServer) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// ActiveAccessToken reports whether fosite holds token as an active access
// token.
func (s *ConsentServer) ActiveAccessToken(ctx context.Context, token string) bool {
	_, _, err := s.provider.IntrospectToken(ctx, token, fosite.AccessToken, s.newSession())
	return err == nil
}

func (s *ConsentServer) count(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		h(w, r)
	}
}

func (s *ConsentServer) newSession() *openid.DefaultSession {
	now := time.Now().UTC()
	return &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Subject: s.Subject, AuthTime: now, RequestedAt: now},
		Headers: &jwt.Headers{Extra: map[string]interface{}{"kid": s.keyID}},
		Subject: s.Subject,
	}
}

// metadata is an RFC 8414 document describing what fosite does here.
func (s *ConsentServer) metadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                           s.Issuer,
		"authorization_endpoint":                           s.Issuer + ConsentPathAuthorize,
		"pushed_authorization_request_endpoint":            s.Issuer + ConsentPathPAR,
		"token_endpoint":                                   s.Issuer + ConsentPathToken,
		"revocation_endpoint":                              s.Issuer + ConsentPathRevoke,
		"jwks_uri":                                         s.Issuer + ConsentPathJWKS,
		"require_pushed_authorization_requests":            true,
		"code_challenge_methods_supported":                 []string{"S256"},
		"response_types_supported":                         []string{"code"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported":            []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES256", "PS256"},
		"id_token_signing_alg_values_supported":            []string{"ES256"},
	})
}

func (s *ConsentServer) par(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := s.provider.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		s.provider.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	resp, err := s.provider.NewPushedAuthorizeResponse(ctx, ar, s.newSession())
	if err != nil {
		s.provider.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	s.provider.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

// authorize is the user approving every requested scope at once; a
// request pushed with deny=1 is refused with access_denied.
func (s *ConsentServer) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	if ar.GetRequestForm().Get("deny") == "1" {
		s.provider.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The user said no."))
		return
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	resp, err := s.provider.NewAuthorizeResponse(ctx, ar, s.newSession())
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	s.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

func (s *ConsentServer) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := s.provider.NewAccessRequest(ctx, r, s.newSession())
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

func (s *ConsentServer) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.provider.WriteRevocationResponse(ctx, w, s.provider.NewRevocationRequest(ctx, r))
}

func (s *ConsentServer) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &s.key.PublicKey, KeyID: s.keyID, Algorithm: "ES256", Use: "sig"},
	}})
}
