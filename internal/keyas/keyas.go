// Package keyas is an OAuth 2.0 token endpoint for bankauth's tests of keys
// kept in Vault. It checks with go-jose, independently of the plugin, what
// an open-banking client sends: a private_key_jwt client assertion against
// the client's published JWK Set, a DPoP proof (RFC 9449) against the jwk in
// its header, with a server nonce the client must learn from a
// use_dpop_nonce answer, and a TLS client certificate issued by a CA it
// trusts. Only tests import it.
package keyas

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
)

// Nonce is the DPoP nonce the server wants in proofs.
const Nonce = "server-nonce-1"

// Server is a running token endpoint on loopback TLS.
type Server struct {
	URL      string // https://127.0.0.1:port
	TokenURL string // URL + "/token"
	CAPEM    string // the CA of the server's certificate

	clientID string
	jwks     func() (jose.JSONWebKeySet, error)
	srv      *httptest.Server

	mu   sync.Mutex
	seen Seen
	jkt  map[string]string // access token -> DPoP key thumbprint
}

// Seen is what the server saw and accepted.
type Seen struct {
	Requests int      // token requests, refused ones included
	KIDs     []string // kids of the accepted assertions
	Subjects []string // CNs of the client certificates
	JKTs     []string // thumbprints of the DPoP keys tokens were bound to
}

// Start runs a server that trusts client certificates from clientCAPEM,
// verifies assertions of clientID with the set jwks returns (fetched anew
// on each request, as a bank with a cold cache would).
func Start(clientCAPEM, clientID string, jwks func() (jose.JSONWebKeySet, error)) (*Server, error) {
	serverCA, err := testpki.NewCA("keyas server CA")
	if err != nil {
		return nil, err
	}
	tlsCfg, err := serverCA.ServerTLS(nil)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(clientCAPEM))
	tlsCfg.ClientCAs, tlsCfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	s := &Server{clientID: clientID, jwks: jwks, jkt: map[string]string{}, CAPEM: string(serverCA.CertPEM)}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.token))
	s.srv.TLS = tlsCfg
	s.srv.StartTLS()
	s.URL, s.TokenURL = s.srv.URL, s.srv.URL+"/token"
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Seen returns a copy of what the server saw.
func (s *Server) Seen() Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.seen
	c.KIDs = append([]string(nil), c.KIDs...)
	c.Subjects = append([]string(nil), c.Subjects...)
	c.JKTs = append([]string(nil), c.JKTs...)
	return c
}

// BoundTo returns the thumbprint of the DPoP key an access token it issued
// is bound to, or "".
func (s *Server) BoundTo(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jkt[token]
}

func fail(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, code, desc)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen.Requests++
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		s.seen.Subjects = append(s.seen.Subjects, r.TLS.PeerCertificates[0].Subject.CommonName)
	}
	_ = r.ParseForm()

	// private_key_jwt (RFC 7523), verified with the published JWK Set.
	if r.Form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		fail(w, 401, "invalid_client", "no client assertion")
		return
	}
	a, err := jwt.ParseSigned(r.Form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.PS256, jose.ES256, jose.ES384})
	if err != nil {
		fail(w, 401, "invalid_client", err.Error())
		return
	}
	kid := a.Headers[0].KeyID
	set, err := s.jwks()
	if err != nil {
		fail(w, 401, "invalid_client", "cannot fetch the client's JWK Set: "+err.Error())
		return
	}
	keys := set.Key(kid)
	var claims jwt.Claims
	if len(keys) != 1 || a.Claims(keys[0].Key, &claims) != nil {
		fail(w, 401, "invalid_client", "assertion not signed by a published key "+kid)
		return
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: s.clientID, Subject: s.clientID,
		AnyAudience: jwt.Audience{s.TokenURL}, Time: time.Now()}, time.Minute); err != nil {
		fail(w, 401, "invalid_client", err.Error())
		return
	}

	// DPoP (RFC 9449 section 4.3), with a server nonce (section 8).
	proof, err := jose.ParseSigned(r.Header.Get("DPoP"), []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.PS256})
	if err != nil {
		fail(w, 400, "invalid_dpop_proof", err.Error())
		return
	}
	h := proof.Signatures[0].Protected
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		fail(w, 400, "invalid_dpop_proof", "no public jwk in the header")
		return
	}
	payload, err := proof.Verify(h.JSONWebKey)
	if h.ExtraHeaders["typ"] != "dpop+jwt" || err != nil {
		fail(w, 400, "invalid_dpop_proof", fmt.Sprint("bad proof ", err))
		return
	}
	var pc struct {
		HTM, HTU, JTI, Nonce string
		IAT                  int64
	}
	_ = json.Unmarshal(payload, &pc)
	if pc.HTM != "POST" || pc.HTU != s.TokenURL || pc.JTI == "" || time.Since(time.Unix(pc.IAT, 0)).Abs() > time.Minute {
		fail(w, 400, "invalid_dpop_proof", fmt.Sprintf("claims %+v", pc))
		return
	}
	if pc.Nonce != Nonce {
		w.Header().Set("DPoP-Nonce", Nonce)
		fail(w, 400, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
		return
	}
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	s.seen.KIDs = append(s.seen.KIDs, kid)
	s.seen.JKTs = append(s.seen.JKTs, jkt)
	tok := fmt.Sprintf("dpop-token-%d-%d", s.seen.Requests, time.Now().UnixNano())
	s.jkt[tok] = jkt
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"DPoP","expires_in":3600}`, tok)
}
