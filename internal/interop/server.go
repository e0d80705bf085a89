// Package interop runs an independent OAuth 2.0 authorization server, built
// on github.com/ory/fosite, for bankauth's interoperability tests: the
// oauth2 provider must be accepted by an implementation it did not write.
// ConsentServer (consent.go) is fosite as the authorization server of the
// user-consent flow that package fapi drives: PAR, PKCE, OpenID Connect,
// refresh token rotation and revocation.
//
// Only tests import this package, so the plugin binary never links fosite.
//
// fosite implements client_secret_basic, client_secret_post and
// private_key_jwt itself. It has no RFC 8705 tls_client_auth, so Server
// adds it as a fosite ClientAuthenticationStrategy: for a client registered
// with tls_client_auth the TLS layer must have verified a client
// certificate chain and the certificate's subject DN must be the one
// registered (RFC 8705 section 2.1.2); every other client goes through
// fosite's own strategy.
package interop

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"
)

// Client registers one OAuth client with the server.
type Client struct {
	ID     string
	Secret string // client_secret_basic, client_secret_post
	// AuthMethod is the registered token_endpoint_auth_method:
	// client_secret_basic, client_secret_post, private_key_jwt or tls_client_auth.
	AuthMethod string
	// PublicKey and SigningAlg verify private_key_jwt assertions.
	PublicKey  crypto.PublicKey
	KeyID      string
	SigningAlg string
	// JWKSURI, instead of PublicKey, is where fosite fetches the client's
	// JWK Set (and fetches again when an assertion's kid is not in it).
	JWKSURI string
	// SubjectDN is the certificate subject a tls_client_auth client must present.
	SubjectDN string
	Scopes    []string
	Audience  []string
}

// Server is a running fosite authorization server on loopback TLS.
type Server struct {
	URL      string // https://127.0.0.1:port
	TokenURL string // URL + "/oauth2/token"
	// CACertPEM is the PEM of the CA that issued the server's certificate.
	CACertPEM []byte

	srv      *httptest.Server
	store    *storage.MemoryStore
	provider fosite.OAuth2Provider
	mu       sync.Mutex
	mtls     map[string]string // client id -> subject DN
	issued   int
}

// Start runs a server whose certificate comes from serverTLS (which may ask
// for client certificates; tls_client_auth needs it to) and whose trusted
// CA PEM is caPEM. Client assertions must be addressed to its token URL.
func Start(serverTLS *tls.Config, caPEM []byte) (*Server, error) {
	return StartWithAssertionAudience(serverTLS, caPEM, "")
}

// StartWithAssertionAudience is Start for a server that wants client
// assertions addressed to audience (e.g. its issuer identifier, as UAE Open
// Finance and UK Open Banking do) instead of its token URL.
func StartWithAssertionAudience(serverTLS *tls.Config, caPEM []byte, audience string) (*Server, error) {
	s := &Server{store: storage.NewMemoryStore(), mtls: map[string]string{}, CACertPEM: caPEM}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/token", s.token)
	s.srv = httptest.NewUnstartedServer(mux)
	// Ask for a client certificate but let fosite decide who needs one.
	tlsCfg := serverTLS.Clone()
	if tlsCfg.ClientCAs != nil {
		tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	s.srv.TLS = tlsCfg
	s.srv.StartTLS()
	s.URL = s.srv.URL
	s.TokenURL = s.URL + "/oauth2/token"

	cfg := &fosite.Config{
		AccessTokenLifespan:      10 * time.Minute,
		GlobalSecret:             []byte("bankauth-interop-global-secret-32b!"),
		TokenURL:                 s.TokenURL,
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: fosite.DefaultAudienceMatchingStrategy,
	}
	if audience != "" {
		cfg.TokenURL = audience // fosite checks a client assertion's aud against TokenURL
	}
	var f *fosite.Fosite
	cfg.ClientAuthenticationStrategy = func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		return s.authenticate(ctx, f, r, form)
	}
	f = compose.Compose(cfg, s.store, compose.NewOAuth2HMACStrategy(cfg), compose.OAuth2ClientCredentialsGrantFactory, compose.OAuth2TokenIntrospectionFactory).(*fosite.Fosite)
	s.provider = f
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Register adds a client.
func (s *Server) Register(c Client) error {
	dc := &fosite.DefaultClient{ID: c.ID, GrantTypes: []string{"client_credentials"}, Scopes: c.Scopes, Audience: c.Audience}
	if c.Secret != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(c.Secret), bcrypt.MinCost)
		if err != nil {
			return err
		}
		dc.Secret = hash
	}
	oc := &fosite.DefaultOpenIDConnectClient{DefaultClient: dc, TokenEndpointAuthMethod: c.AuthMethod,
		TokenEndpointAuthSigningAlgorithm: c.SigningAlg}
	oc.JSONWebKeysURI = c.JWKSURI
	if c.PublicKey != nil {
		oc.JSONWebKeys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: c.PublicKey, KeyID: c.KeyID, Algorithm: c.SigningAlg, Use: "sig"}}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.AuthMethod == "tls_client_auth" {
		if c.SubjectDN == "" {
			return errors.New("tls_client_auth client needs a SubjectDN")
		}
		s.mtls[c.ID] = c.SubjectDN
	}
	s.store.Clients[c.ID] = oc
	return nil
}

// Issued counts the access tokens the server has handed out.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Valid reports whether token is an active access token issued here, and
// returns the client it was issued to.
func (s *Server) Valid(ctx context.Context, token string) (clientID string, ok bool) {
	_, ar, err := s.provider.IntrospectToken(ctx, token, fosite.AccessToken, &fosite.DefaultSession{})
	if err != nil {
		return "", false
	}
	return ar.GetClient().GetID(), true
}

// authenticate is RFC 8705 tls_client_auth for clients registered with
// it, fosite's own client authentication for the rest.
func (s *Server) authenticate(ctx context.Context, f *fosite.Fosite, r *http.Request, form url.Values) (fosite.Client, error) {
	id := form.Get("client_id")
	s.mu.Lock()
	dn, isMTLS := s.mtls[id]
	s.mu.Unlock()
	if !isMTLS {
		return f.DefaultClientAuthenticationStrategy(ctx, r, form)
	}
	if _, _, basic := r.BasicAuth(); basic || form.Get("client_secret") != "" || form.Get("client_assertion") != "" {
		return nil, fosite.ErrInvalidClient.WithHint("tls_client_auth clients must not send other credentials.")
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return nil, fosite.ErrInvalidClient.WithHint("tls_client_auth requires a client certificate issued by a trusted CA.")
	}
	if got := leaf(r.TLS.VerifiedChains).Subject.String(); got != dn {
		return nil, fosite.ErrInvalidClient.WithHintf("Certificate subject %q is not the registered %q.", got, dn)
	}
	return s.store.GetClient(ctx, id)
}

func leaf(chains [][]*x509.Certificate) *x509.Certificate { return chains[0][0] }

// token is the token endpoint, the way fosite's examples write it.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := s.provider.NewAccessRequest(ctx, r, &fosite.DefaultSession{})
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	s.mu.Lock()
	s.issued++
	s.mu.Unlock()
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}
