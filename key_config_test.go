package bankauth

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/keyas"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
)

// TestConfigUsesKeysKeptInVault: one oauth2 config whose assertion is
// signed by signing_key, whose TLS client certificate is tls_key's, and
// whose token requests carry DPoP proofs by dpop_key; then dpop/<config>
// proofs for resource requests, a rotation, and the guards.
func TestConfigUsesKeysKeptInVault(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/sig", map[string]any{"type": "rsa-2048", "public_jwks": true, "purpose": "client_auth"})
	e.mustOK(t, logical.CreateOperation, "key/dpop", map[string]any{"type": "ec-p256", "purpose": "dpop"})
	e.mustOK(t, logical.CreateOperation, "key/tls", map[string]any{"type": "ec-p256", "purpose": "tls"})
	csr := e.mustOK(t, logical.UpdateOperation, "key/tls/csr", map[string]any{"common_name": "tpp-transport"}).Data["csr"].(string)
	leaf, clientCA := issueForCSR(t, csr, time.Now().Add(30*24*time.Hour))

	as, err := keyas.Start(clientCA, "tpp-client", func() (jose.JSONWebKeySet, error) { return readJWKS(t, e, "sig"), nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	e.mustOK(t, logical.UpdateOperation, "key/sig", map[string]any{"allowed_endpoints": as.URL + "/", "allowed_audiences": as.TokenURL})
	base := map[string]any{"provider": "oauth2", "token_url": as.TokenURL, "client_id": "tpp-client",
		"auth_method": "private_key_jwt", "signing_key": "sig", "tls_key": "tls", "dpop_key": "dpop", "ca_cert": as.CAPEM}

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
	// One refusal for want of the nonce, then the token.
	if seen := as.Seen(); seen.Requests != 2 || len(seen.KIDs) != 1 || seen.KIDs[0] != sigKey["kid"] ||
		seen.JKTs[0] != dpopKey["kid"] || seen.Subjects[0] != "tpp-transport" || tok["token_type"] != "DPoP" {
		t.Errorf("seen %+v token %v", seen, tok)
	}

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
		pc.Nonce != keyas.Nonce || pc.JTI == "" || as.BoundTo(tok["access_token"].(string)) != base64.RawURLEncoding.EncodeToString(tp) {
		t.Errorf("resource proof claims %+v", pc)
	}
	// A resource server's own nonce, when given, replaces the token endpoint's.
	rsProof := e.mustOK(t, logical.UpdateOperation, "dpop/ob", map[string]any{"htm": "POST", "htu": "https://rs.bank.example/payments", "nonce": "rs-nonce-7"}).Data["dpop"].(string)
	rs, err := jose.ParseSigned(rsProof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	rsPayload, err := rs.Verify(rs.Signatures[0].Protected.JSONWebKey)
	if err != nil || !strings.Contains(string(rsPayload), `"nonce":"rs-nonce-7"`) {
		t.Errorf("resource server nonce: %s %v", rsPayload, err)
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
	if kids := as.Seen().KIDs; len(kids) != 2 || kids[1] != newKid || kids[0] == newKid {
		t.Errorf("kids after rotation %v (new %v)", kids, newKid)
	}
	if n := len(readJWKS(t, e, "sig").Keys); n != 2 {
		t.Errorf("JWKS has %d keys during the overlap", n)
	}

	// A DPoP-bound token is cached with its binding: once dpop_key rotates,
	// a read gets a new token bound to the new version, not the old one.
	before := e.mustOK(t, logical.ReadOperation, "token/ob", nil).Data["access_token"]
	e.mustOK(t, logical.UpdateOperation, "key/dpop/rotate", nil)
	after := e.mustOK(t, logical.ReadOperation, "token/ob", nil).Data["access_token"].(string)
	newJKT := e.mustOK(t, logical.ReadOperation, "key/dpop", nil).Data["kid"]
	if after == before || as.BoundTo(after) != newJKT || newJKT == dpopKey["kid"] {
		t.Errorf("after a dpop_key rotation: token %v -> %v bound to %q (new key %v)", before, after, as.BoundTo(after), newJKT)
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
	e.mustOK(t, logical.CreateOperation, "key/sig", map[string]any{"type": "ec-p256", "purpose": "client_auth,tls,dpop"})
	leaf, _ := testpki.NewCA("x")
	client, _ := leaf.Client("c", 0)
	cases := map[string]map[string]any{
		"invalid signing_key: a config names signing_key or private_key, not both": {"provider": "oauth2",
			"token_url": "https://as.example/token", "client_id": "c", "auth_method": "private_key_jwt",
			"signing_key": "sig", "private_key": string(client.KeyPEM)},
		"invalid tls_key: a config names tls_key or tls_client_cert": {"provider": "oauth2",
			"token_url": "https://as.example/token", "client_id": "c", "client_secret": "s", "tls_key": "sig",
			"tls_client_cert": string(client.CertPEM), "tls_client_key": string(client.KeyPEM)},
		"invalid dpop_key: applies to provider oauth2 and to profiles written to profile/<name>": {"provider": "rakbank", "client_id": "c", "client_secret": "s", "scope": "x",
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

// tls_key, like tls_client_cert, survives a change of provider.
func TestTLSKeyKeptAcrossProviderChange(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/tls", map[string]any{"type": "ec-p256", "purpose": "tls"})
	csr := e.mustOK(t, logical.UpdateOperation, "key/tls/csr", map[string]any{"common_name": "tpp"}).Data["csr"].(string)
	leaf, ca := issueForCSR(t, csr, time.Now().Add(24*time.Hour))
	e.mustOK(t, logical.UpdateOperation, "key/tls/certificate", map[string]any{"certificate": leaf + ca})
	e.mustOK(t, logical.CreateOperation, "config/x", map[string]any{"provider": "oauth2", "token_url": "https://as.example/token",
		"client_id": "c", "client_secret": "s", "tls_key": "tls"})
	e.mustOK(t, logical.UpdateOperation, "config/x", map[string]any{"provider": "rakbank", "client_id": "c",
		"client_secret": "s", "scope": "accounts"})
	if got := e.mustOK(t, logical.ReadOperation, "config/x", nil).Data; got["tls_key"] != "tls" || got["provider"] != "rakbank" {
		t.Errorf("after a provider change: %v", got)
	}
}

// dpop_key works for profiles too: the profile's last step (the one that
// answers with the token) carries a DPoP proof, and is sent again with the
// bank's nonce when the bank asks for one. The token endpoint is keyas,
// which checks the client assertion against the published JWK Set, the
// mTLS certificate and the DPoP proof and its nonce.
func TestProfileConfigWithDPoPKey(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/sig", map[string]any{"type": "rsa-2048", "public_jwks": true, "purpose": "client_auth"})
	e.mustOK(t, logical.CreateOperation, "key/dpop", map[string]any{"type": "ec-p256", "purpose": "dpop"})
	e.mustOK(t, logical.CreateOperation, "key/tls", map[string]any{"type": "ec-p256", "purpose": "tls"})
	csr := e.mustOK(t, logical.UpdateOperation, "key/tls/csr", map[string]any{"common_name": "tpp-transport"}).Data["csr"].(string)
	leaf, clientCA := issueForCSR(t, csr, time.Now().Add(30*24*time.Hour))
	e.mustOK(t, logical.UpdateOperation, "key/tls/certificate", map[string]any{"certificate": leaf + clientCA})
	as, err := keyas.Start(clientCA, "tpp-client", func() (jose.JSONWebKeySet, error) { return readJWKS(t, e, "sig"), nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	e.mustOK(t, logical.UpdateOperation, "key/sig", map[string]any{"allowed_endpoints": as.URL + "/", "allowed_audiences": as.URL + "/token"})
	e.mustOK(t, logical.CreateOperation, "profile/fapibank", map[string]any{"profile": `{
	  "fields": [{"name": "client_id", "required": true}, {"name": "private_key", "secret": true}],
	  "steps": [{"name": "token", "method": "POST", "path": "/token",
	    "client_assertion": {"client_id": "{{field.client_id}}", "private_key": "{{field.private_key}}", "alg": "PS256"},
	    "body": {"type": "form", "fields": {"grant_type": "client_credentials", "client_id": "{{field.client_id}}"}}}]
	}`})
	e.mustOK(t, logical.CreateOperation, "config/fb", map[string]any{"provider": "fapibank", "base_url": as.URL,
		"ca_cert": as.CAPEM, "client_id": "tpp-client", "signing_key": "sig", "tls_key": "tls", "dpop_key": "dpop"})

	tok := e.mustOK(t, logical.ReadOperation, "token/fb", nil).Data
	dpopKey := e.mustOK(t, logical.ReadOperation, "key/dpop", nil).Data
	// One refusal for want of the nonce, then the token, bound to dpop_key.
	if seen := as.Seen(); seen.Requests != 2 || len(seen.JKTs) != 1 || seen.JKTs[0] != dpopKey["kid"] ||
		tok["token_type"] != "DPoP" || as.BoundTo(tok["access_token"].(string)) != dpopKey["kid"] {
		t.Errorf("seen %+v token type %v", seen, tok["token_type"])
	}
	// The nonce is remembered for the next client: a forced refresh needs no
	// second try.
	e.mustOK(t, logical.UpdateOperation, "token/fb", nil)
	if seen := as.Seen(); seen.Requests != 3 {
		t.Errorf("%d token requests after a forced refresh, want 3 (the nonce known)", seen.Requests)
	}
}
