package keyring_test

import (
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce"`
	ATH   string `json:"ath"`
}

// checkProof verifies a DPoP proof as an RFC 9449 server does, with
// go-jose: typ dpop+jwt, an asymmetric alg, a public jwk in the header that
// verifies the signature; it returns the claims and the jwk.
func checkProof(t *testing.T, proof string) (proofClaims, *jose.JSONWebKey) {
	t.Helper()
	obj, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.PS256, jose.ES256, jose.ES384})
	if err != nil {
		t.Fatalf("go-jose parse: %v", err)
	}
	h := obj.Signatures[0].Protected
	if h.ExtraHeaders["typ"] != "dpop+jwt" {
		t.Errorf("typ %v", h.ExtraHeaders["typ"])
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatal("no public jwk in the header")
	}
	payload, err := obj.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("go-jose verify with the header's jwk: %v", err)
	}
	var c proofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c, h.JSONWebKey
}

func TestDPoPProofVerifiedByGoJose(t *testing.T) {
	for _, typ := range keyring.Types {
		k := testKey(t, typ)
		proof, err := k.DPoPProof(keyring.DPoPRequest{Method: "POST", URL: "https://as.bank.example/token?x=1#f"}, t0)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		c, jwk := checkProof(t, proof)
		if c.HTM != "POST" || c.HTU != "https://as.bank.example/token" || c.IAT != t0.Unix() || c.JTI == "" ||
			c.Nonce != "" || c.ATH != "" {
			t.Errorf("%s: claims %+v", typ, c)
		}
		tp, _ := jwk.Thumbprint(crypto.SHA256)
		if b64url(tp) != k.Latest().KID {
			t.Errorf("%s: header jwk is not the latest version's", typ)
		}
	}
}

func TestDPoPProofForResourceRequest(t *testing.T) {
	k := testKey(t, keyring.TypeECP256)
	req := keyring.DPoPRequest{Method: "GET", URL: "https://rs.bank.example/accounts", AccessToken: "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", Nonce: "eyJ7S_zG.eyJH0-Z.HX4w-7v"}
	p1, err := k.DPoPProof(req, t0)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := k.DPoPProof(req, t0)
	c1, _ := checkProof(t, p1)
	c2, _ := checkProof(t, p2)
	sum := sha256.Sum256([]byte(req.AccessToken))
	if c1.ATH != b64url(sum[:]) || c1.Nonce != req.Nonce || c1.HTM != "GET" {
		t.Errorf("claims %+v", c1)
	}
	// RFC 9449 section 7.1's example: this token's ath.
	if c1.ATH != "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" {
		t.Errorf("ath %s differs from RFC 9449's example", c1.ATH)
	}
	if c1.JTI == c2.JTI {
		t.Error("two proofs share a jti")
	}
	for field, r := range map[string]keyring.DPoPRequest{"htm": {Method: "", URL: req.URL}, "htu": {Method: "GET", URL: "rs/accounts"}} {
		_, err := k.DPoPProof(r, t0)
		var fe *keyring.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
}
