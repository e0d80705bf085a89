package keyring_test

import (
	"crypto/tls"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

func TestSignJWTVerifiedByGoJose(t *testing.T) {
	for _, typ := range []string{keyring.TypeRSA2048, keyring.TypeECP256, keyring.TypeECP384} {
		k := testKey(t, typ)
		tok, err := k.SignJWT("JWT", map[string]any{"iss": "client-1", "sub": "client-1", "aud": "https://as.example/token", "exp": 2000000000})
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.PS256, jose.ES256, jose.ES384})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		var c jwt.Claims
		if err := parsed.Claims(publicOf(t, k.Latest()), &c); err != nil {
			t.Fatalf("%s: go-jose verify: %v", typ, err)
		}
		h := parsed.Headers[0]
		if c.Issuer != "client-1" || h.KeyID != k.Latest().KID || h.Algorithm != keyring.DefaultAlg(typ) || h.ExtraHeaders["typ"] != "JWT" {
			t.Errorf("%s: claims %+v header %+v", typ, c, h)
		}
	}
}

// The mTLS certificate pairs the attached chain with the key of the version
// it certifies, even after a rotation.
func TestTLSCertificateUsesTheCertifiedVersion(t *testing.T) {
	k := freshKey(t, keyring.TypeECP256)
	if _, err := k.TLSCertificate(); err == nil {
		t.Fatal("a key without certificate gave a TLS certificate")
	}
	ca := newTestCA(t)
	leaf := ca.issueFor(t, k, "tpp")
	if err := k.Rotate(nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := k.AttachCertificate(leaf + ca.pem); err != nil {
		t.Fatal(err)
	}
	c, err := k.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	// crypto/tls's own check that the key belongs to the certificate.
	if _, err := tls.X509KeyPair([]byte(k.Certificate.ChainPEM()), marshalKeyPEM(t, c.PrivateKey)); err != nil {
		t.Errorf("key and certificate do not pair: %v", err)
	}
	if len(c.Certificate) != 2 || c.Leaf.Subject.CommonName != "tpp" {
		t.Errorf("chain %d leaf %v", len(c.Certificate), c.Leaf.Subject)
	}
}
