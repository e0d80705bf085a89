package bankauth

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
)

// keyAS is an authorization server for keys kept in Vault, checking with
// go-jose what the plugin sends: the private_key_jwt assertion against the
// JWK Set the plugin publishes (fetched through jwks/<name>), the DPoP
// proof against the jwk in its header with RFC 9449's nonce dance, and the
// mTLS client certificate against the CA that issued it for the key's CSR.
type keyAS struct {
	t     *testing.T
	srv   *httptest.Server
	jwks  func() jose.JSONWebKeySet
	nonce string
	caPEM string // the CA of the server's certificate, for the config's ca_cert

	mu       sync.Mutex
	requests int
	kids     []string // assertion kids accepted
	subjects []string // mTLS subjects seen
	jkts     []string // DPoP key thumbprints tokens were bound to
	tokens   map[string]string
}

func newKeyAS(t *testing.T, clientCAPEM string, jwks func() jose.JSONWebKeySet) *keyAS {
	as := &keyAS{t: t, jwks: jwks, nonce: "server-nonce-1", tokens: map[string]string{}}
	serverCA, err := testpki.NewCA("AS server CA")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := serverCA.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(clientCAPEM))
	tlsCfg.ClientCAs, tlsCfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	as.srv = httptest.NewUnstartedServer(http.HandlerFunc(as.token))
	as.srv.TLS = tlsCfg
	as.srv.StartTLS()
	t.Cleanup(as.srv.Close)
	as.caPEM = string(serverCA.CertPEM)
	return as
}

func (as *keyAS) fail(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, code, desc)
}

func (as *keyAS) token(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.requests++
	tokenURL := "https://" + r.Host + r.URL.Path
	as.subjects = append(as.subjects, r.TLS.PeerCertificates[0].Subject.CommonName)
	_ = r.ParseForm()

	// private_key_jwt, verified with the published JWK Set.
	if r.Form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		as.fail(w, 401, "invalid_client", "no client assertion")
		return
	}
	a, err := jwt.ParseSigned(r.Form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.PS256, jose.ES256})
	if err != nil {
		as.fail(w, 401, "invalid_client", err.Error())
		return
	}
	kid := a.Headers[0].KeyID
	set := as.jwks()
	keys := set.Key(kid)
	var claims jwt.Claims
	if len(keys) != 1 || a.Claims(keys[0].Key, &claims) != nil {
		as.fail(w, 401, "invalid_client", "assertion not signed by a published key "+kid)
		return
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: "tpp-client", Subject: "tpp-client",
		AnyAudience: jwt.Audience{tokenURL}, Time: time.Now()}, time.Minute); err != nil {
		as.fail(w, 401, "invalid_client", err.Error())
		return
	}

	// DPoP (RFC 9449 section 4.3), with a server nonce.
	proof, err := jose.ParseSigned(r.Header.Get("DPoP"), []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.ES384})
	if err != nil {
		as.fail(w, 400, "invalid_dpop_proof", err.Error())
		return
	}
	h := proof.Signatures[0].Protected
	payload, err := proof.Verify(h.JSONWebKey)
	if h.ExtraHeaders["typ"] != "dpop+jwt" || err != nil {
		as.fail(w, 400, "invalid_dpop_proof", fmt.Sprint("bad proof ", err))
		return
	}
	var pc struct {
		HTM, HTU, JTI, Nonce string
		IAT                  int64
	}
	_ = json.Unmarshal(payload, &pc)
	if pc.HTM != "POST" || pc.HTU != tokenURL || pc.JTI == "" || time.Since(time.Unix(pc.IAT, 0)) > time.Minute {
		as.fail(w, 400, "invalid_dpop_proof", fmt.Sprintf("claims %+v", pc))
		return
	}
	if pc.Nonce != as.nonce {
		w.Header().Set("DPoP-Nonce", as.nonce)
		as.fail(w, 400, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
		return
	}
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	as.kids = append(as.kids, kid)
	as.jkts = append(as.jkts, jkt)
	tok := fmt.Sprintf("dpop-token-%d", as.requests)
	as.tokens[tok] = jkt
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"DPoP","expires_in":3600}`, tok)
}

// TestConfigUsesKeysKeptInVault: one oauth2 config whose assertion is
// signed by signing_key, whose TLS client certificate is tls_key's, and
// whose token requests carry DPoP proofs by dpop_key; then dpop/<config>
// proofs for resource requests, a rotation, and the guards.
func TestConfigUsesKeysKeptInVault(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/sig", map[string]any{"type": "rsa-2048", "public_jwks": true})
	e.mustOK(t, logical.CreateOperation, "key/dpop", map[string]any{"type": "ec-p256"})
	e.mustOK(t, logical.CreateOperation, "key/tls", map[string]any{"type": "ec-p256"})
	csr := e.mustOK(t, logical.UpdateOperation, "key/tls/csr", map[string]any{"common_name": "tpp-transport"}).Data["csr"].(string)
	leaf, clientCA := issueForCSR(t, csr, time.Now().Add(30*24*time.Hour))

	as := newKeyAS(t, clientCA, func() jose.JSONWebKeySet { return readJWKS(t, e, "sig") })
	base := map[string]any{"provider": "oauth2", "token_url": as.srv.URL + "/token", "client_id": "tpp-client",
		"auth_method": "private_key_jwt", "signing_key": "sig", "tls_key": "tls", "dpop_key": "dpop", "ca_cert": as.caPEM}

	// tls_key needs an attached certificate; keys must exist; one credential per use.
	for want, extra := range map[string]map[string]any{
		"invalid tls_key: has no certificate attached": {},
		"invalid signing_key: names no key":            {"signing_key": "nope"},
	} {
		data := map[string]any{}
		for k, v := range base {
			data[k] = v
		}
		for k, v := range extra {
			data[k] = v
		}
		resp, err := e.request(t, logical.CreateOperation, "config/ob", data)
		if msg := errorText(resp, err); !strings.HasPrefix(msg, want) {
			t.Errorf("got %q, want %q", msg, want)
		}
	}
	e.mustOK(t, logical.UpdateOperation, "key/tls/certificate", map[string]any{"certificate": leaf + clientCA})
	e.mustOK(t, logical.CreateOperation, "config/ob", base)
	cfg := e.mustOK(t, logical.ReadOperation, "config/ob", nil).Data
	if cfg["signing_key"] != "sig" || cfg["tls_key"] != "tls" || cfg["dpop_key"] != "dpop" || cfg["private_key_set"] != false {
		t.Errorf("config read %v", cfg)
	}

	tok := e.mustOK(t, logical.ReadOperation, "token/ob", nil).Data
	sigKey := e.mustOK(t, logical.ReadOperation, "key/sig", nil).Data
	dpopKey := e.mustOK(t, logical.ReadOperation, "key/dpop", nil).Data
	as.mu.Lock()
	if as.requests != 2 || len(as.kids) != 1 || as.kids[0] != sigKey["kid"] || as.jkts[0] != dpopKey["kid"] ||
		as.subjects[0] != "tpp-transport" || tok["token_type"] != "DPoP" {
		t.Errorf("requests %d kids %v jkts %v subjects %v token %v", as.requests, as.kids, as.jkts, as.subjects, tok)
	}
	as.mu.Unlock()

	// A proof for a resource request: ath binds the token, the nonce is the
	// bank's, and the key is the one the token is bound to.
	got := e.mustOK(t, logical.UpdateOperation, "dpop/ob", map[string]any{"htm": "GET", "htu": "https://rs.bank.example/accounts?page=2"}).Data
	proof, err := jose.ParseSigned(got["dpop"].(string), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := proof.Signatures[0].Protected
	payload, err := proof.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	var pc struct{ HTM, HTU, ATH, Nonce, JTI string }
	_ = json.Unmarshal(payload, &pc)
	sum := sha256.Sum256([]byte(tok["access_token"].(string)))
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if pc.HTM != "GET" || pc.HTU != "https://rs.bank.example/accounts" || pc.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) ||
		pc.Nonce != as.nonce || pc.JTI == "" || as.tokens[tok["access_token"].(string)] != base64.RawURLEncoding.EncodeToString(tp) {
		t.Errorf("resource proof claims %+v", pc)
	}
	for field, data := range map[string]map[string]any{"htm": {"htm": "get", "htu": "https://a/"}, "htu": {"htm": "GET", "htu": "nope"}} {
		resp, err := e.request(t, logical.UpdateOperation, "dpop/ob", data)
		if msg := errorText(resp, err); !strings.HasPrefix(msg, "invalid "+field) {
			t.Errorf("%s: %q", field, msg)
		}
	}

	// After a rotation of signing_key the next token is asserted with the
	// new version, which the published set carries next to the old one.
	e.mustOK(t, logical.UpdateOperation, "key/sig/rotate", nil)
	e.mustOK(t, logical.UpdateOperation, "token/ob", nil)
	newKid := e.mustOK(t, logical.ReadOperation, "key/sig", nil).Data["kid"]
	as.mu.Lock()
	if len(as.kids) != 2 || as.kids[1] != newKid || as.kids[0] == newKid {
		t.Errorf("kids after rotation %v (new %v)", as.kids, newKid)
	}
	as.mu.Unlock()
	if n := len(readJWKS(t, e, "sig").Keys); n != 2 {
		t.Errorf("JWKS has %d keys during the overlap", n)
	}

	// A key a config uses cannot be deleted.
	for _, k := range []string{"sig", "tls", "dpop"} {
		resp, err := e.request(t, logical.DeleteOperation, "key/"+k, nil)
		if msg := errorText(resp, err); msg != fmt.Sprintf("key %q is in use by config ob; change or delete those configs first", k) {
			t.Errorf("delete %s: %q", k, msg)
		}
	}
	e.mustOK(t, logical.DeleteOperation, "config/ob", nil)
	e.mustOK(t, logical.DeleteOperation, "key/sig", nil)
}

func TestKeyFieldsRefuseMixedCredentials(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/sig", map[string]any{"type": "ec-p256"})
	leaf, _ := testpki.NewCA("x")
	client, _ := leaf.Client("c", 0)
	cases := map[string]map[string]any{
		"invalid signing_key: a config names signing_key or private_key, not both": {"provider": "oauth2",
			"token_url": "https://as.example/token", "client_id": "c", "auth_method": "private_key_jwt",
			"signing_key": "sig", "private_key": string(client.KeyPEM)},
		"invalid tls_key: a config names tls_key or tls_client_cert": {"provider": "oauth2",
			"token_url": "https://as.example/token", "client_id": "c", "client_secret": "s", "tls_key": "sig",
			"tls_client_cert": string(client.CertPEM), "tls_client_key": string(client.KeyPEM)},
		"invalid dpop_key: applies to provider oauth2": {"provider": "rakbank", "client_id": "c", "client_secret": "s", "scope": "x",
			"dpop_key": "sig"},
	}
	for want, data := range cases {
		resp, err := e.request(t, logical.CreateOperation, "config/x", data)
		msg := errorText(resp, err)
		if !strings.HasPrefix(msg, want) {
			t.Errorf("got %q, want %q", msg, want)
		}
		if strings.Contains(msg, "PRIVATE KEY") {
			t.Errorf("error quotes a key: %s", msg)
		}
	}
}
