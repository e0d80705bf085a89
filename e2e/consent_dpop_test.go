//go:build e2e

package e2e

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/oidcop"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// TestConsentDPoPProofThroughVault: on a real Vault, dpop/ob consent=alice
// answers a proof that go-jose verifies against its header's key, which is
// dpop_key's, with ath = base64url(SHA-256) of the token token/ob/alice
// answers; oidc-provider's userinfo endpoint, a DPoP resource of its own,
// accepts the token with it. Without consent the CLI fails naming consent.
func TestConsentDPoPProofThroughVault(t *testing.T) {
	t.Parallel()
	r := newConsentRig(t, vaulttest.Options{}, 60)
	m := r.mount
	r.configure(t)
	loc := follow(t, r.begin(t, "alice"), nil)
	if cb := r.cli(t, "write", m+"/consent/ob/alice/callback", "callback_url="+loc); cb["state"] != "authorized" {
		t.Fatalf("callback answered %v", cb)
	}
	r.cliFails(t, "consent=<id>", "write", m+"/dpop/ob", "htm=GET", "htu="+r.op.Issuer+"/me")

	me := r.op.Issuer + "/me"
	got := r.cli(t, "write", m+"/dpop/ob", "consent=alice", "htm=GET", "htu="+me+"?page=2")
	token, _ := r.cli(t, "read", m+"/token/ob/alice")["access_token"].(string)
	proof, _ := got["dpop"].(string)
	jws, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || h.ExtraHeaders["typ"] != "dpop+jwt" {
		t.Fatalf("proof header %+v", h)
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	var c struct{ HTM, HTU, ATH, Nonce, JTI string }
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	if c.HTM != "GET" || c.HTU != me || c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) || c.JTI == "" || c.Nonce == "" {
		t.Errorf("proof claims %+v, answer token_type %v", c, got["token_type"])
	}
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if kid := r.cli(t, "read", m+"/key/obdpop")["kid"]; base64.RawURLEncoding.EncodeToString(tp) != kid {
		t.Errorf("proof signed by %x, dpop_key is %v", tp, kid)
	}

	// The bank takes the token with the proof (with a newer nonce, when it
	// asks for one, given as nonce=).
	status, body, nonce := dpopGet(t, me, token, proof)
	if status == http.StatusUnauthorized && nonce != "" {
		p, _ := r.cli(t, "write", m+"/dpop/ob", "consent=alice", "htm=GET", "htu="+me, "nonce="+nonce)["dpop"].(string)
		status, body, _ = dpopGet(t, me, token, p)
	}
	if status != http.StatusOK || !strings.Contains(body, `"sub":"alice"`) {
		t.Errorf("userinfo: %d %s", status, body)
	}
}

// dpopGet sends GET url with a DPoP-bound token and its proof; it returns
// the status, the body and the server's DPoP-Nonce.
func dpopGet(t *testing.T, url, token, proof string) (int, string, string) {
	t.Helper()
	status, body, nonce, err := oidcop.DPoPGet(url, token, proof)
	if err != nil {
		t.Fatal(err)
	}
	return status, body, nonce
}
