package bankauth

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/oidcop"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/vault/sdk/logical"
)

// dpopClaimsOf verifies a DPoP proof with go-jose, an implementation of
// its own, against the public JWK in its header, and returns its header
// type, the JWK's RFC 7638 thumbprint and its claims.
func dpopClaimsOf(t *testing.T, proof string) (typ, jkt string, c struct{ HTM, HTU, ATH, Nonce, JTI string }) {
	t.Helper()
	jws, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("header jwk %v", h.JSONWebKey)
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	typ, _ = h.ExtraHeaders["typ"].(string)
	return typ, base64.RawURLEncoding.EncodeToString(tp), c
}

// TestConsentDPoPProof: dpop/<config> consent=<id> binds the consent's
// current access token (ath), is signed by dpop_key, and oidc-provider's
// userinfo endpoint, a DPoP resource of its own, accepts the token with
// it; consent is required on a consent config and refused on others, and
// a revoked consent answers re-authorization.
func TestConsentDPoPProof(t *testing.T) {
	e := newConsentEnv(t, 0)
	e.authorize(t, "alice")
	dpop := func(data map[string]any) string {
		resp, err := e.request(t, logical.UpdateOperation, "dpop/ob", data)
		return errorText(resp, err)
	}
	if msg := dpop(map[string]any{"htm": "GET", "htu": e.op.Issuer + "/me"}); !strings.HasPrefix(msg, "invalid consent") {
		t.Errorf("no consent: %q", msg)
	}
	if msg := dpop(map[string]any{"consent": "bob", "htm": "GET", "htu": e.op.Issuer + "/me"}); !strings.Contains(msg, "consent ob/bob does not exist") {
		t.Errorf("unknown consent: %q", msg)
	}
	if msg := dpop(map[string]any{"consent": "a..b", "htm": "GET", "htu": e.op.Issuer + "/me"}); !strings.HasPrefix(msg, "invalid consent") {
		t.Errorf("bad consent name: %q", msg)
	}
	for field, data := range map[string]map[string]any{"htm": {"htm": "get", "htu": "https://a/"}, "htu": {"htm": "GET", "htu": "nope"}} {
		data["consent"] = "alice"
		if msg := dpop(data); !strings.HasPrefix(msg, "invalid "+field) {
			t.Errorf("%s: %q", field, msg)
		}
	}

	got := e.mustOK(t, logical.UpdateOperation, "dpop/ob", map[string]any{"consent": "alice", "htm": "GET", "htu": e.op.Issuer + "/me?x=1"}).Data
	token := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil).Data["access_token"].(string)
	typ, jkt, c := dpopClaimsOf(t, got["dpop"].(string))
	sum := sha256.Sum256([]byte(token))
	if typ != "dpop+jwt" || got["token_type"] != "DPoP" || c.HTM != "GET" || c.HTU != e.op.Issuer+"/me" ||
		c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) || c.JTI == "" || c.Nonce == "" {
		t.Errorf("proof typ %q, claims %+v, answer %v", typ, c, got)
	}
	if kid := e.mustOK(t, logical.ReadOperation, "key/obdpop", nil).Data["kid"]; jkt != kid {
		t.Errorf("proof key %s, dpop_key's %v", jkt, kid)
	}
	if raw, _ := json.Marshal(got); strings.Contains(string(raw), token) {
		t.Error("the answer holds the access token")
	}

	// The bank's own resource server takes the token with the proof (with
	// its nonce, given as nonce= when it asks for a newer one).
	status, body, nonce := userinfo(t, e.op.Issuer+"/me", token, got["dpop"].(string))
	if status == http.StatusUnauthorized && nonce != "" {
		p := e.mustOK(t, logical.UpdateOperation, "dpop/ob", map[string]any{"consent": "alice", "htm": "GET", "htu": e.op.Issuer + "/me", "nonce": nonce}).Data["dpop"].(string)
		status, body, _ = userinfo(t, e.op.Issuer+"/me", token, p)
	}
	if status != http.StatusOK || !strings.Contains(body, `"sub":"alice"`) {
		t.Errorf("userinfo: %d %s", status, body)
	}

	// A consent config's dpop/ without consent, or another config's with it.
	e.mustOK(t, logical.CreateOperation, "config/etz", map[string]any{"provider": "etranzact", "base_url": e.url,
		"username": "emu-user", "password": "emu-password-Xy9!"})
	if msg := dpop(map[string]any{"htm": "GET", "htu": "https://rs.bank.example/a"}); !strings.Contains(msg, "consent=<id>") {
		t.Errorf("consent config without consent: %q", msg)
	}
	resp, err := e.request(t, logical.UpdateOperation, "dpop/etz", map[string]any{"consent": "alice", "htm": "GET", "htu": "https://rs.bank.example/a"})
	if msg := errorText(resp, err); !strings.HasPrefix(msg, "invalid consent") {
		t.Errorf("consent on a client credentials config: %q", msg)
	}

	// Withdrawn at the bank: once a refresh finds out, no proof.
	if err := e.op.Withdraw("alice"); err != nil {
		t.Fatal(err)
	}
	e.request(t, logical.UpdateOperation, "token/ob/alice", nil)
	if msg := dpop(map[string]any{"consent": "alice", "htm": "GET", "htu": e.op.Issuer + "/me"}); !strings.Contains(msg, "consent ob/alice needs re-authorization") {
		t.Errorf("revoked consent: %q", msg)
	}
}

// userinfo sends GET url with a DPoP-bound token and its proof, and returns
// the status, the body and the DPoP-Nonce the server gave.
func userinfo(t *testing.T, url, token, proof string) (int, string, string) {
	t.Helper()
	status, body, nonce, err := oidcop.DPoPGet(url, token, proof)
	if err != nil {
		t.Fatal(err)
	}
	return status, body, nonce
}

// TestConsentDPoPProofRefreshesAStaleToken: a proof never binds a token a
// reader would not get: a stale token is refreshed first (one refresh), and
// the proof's ath is the new token's, the one the next read answers.
func TestConsentDPoPProofRefreshesAStaleToken(t *testing.T) {
	e := newConsentEnv(t, 3)
	e.authorize(t, "alice")
	first := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil).Data["access_token"].(string)
	e.clock.Advance(3 * time.Second) // past the token's life; the bank takes proofs dated 3 s ahead

	proof := e.mustOK(t, logical.UpdateOperation, "dpop/ob", map[string]any{"consent": "alice", "htm": "POST", "htu": "https://rs.bank.example/payments"}).Data["dpop"].(string)
	now := e.mustOK(t, logical.ReadOperation, "token/ob/alice", nil).Data["access_token"].(string)
	_, _, c := dpopClaimsOf(t, proof)
	sum := sha256.Sum256([]byte(now))
	if now == first || c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Errorf("proof binds %s; the token was refreshed: %v", c.ATH, now != first)
	}
	if n := e.op.Events("refresh_token.consumed"); n != 1 {
		t.Errorf("the bank saw %d refreshes", n)
	}
}
