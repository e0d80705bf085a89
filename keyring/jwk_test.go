package keyring_test

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// kids are RFC 7638 thumbprints as go-jose computes them.
func TestThumbprintMatchesGoJose(t *testing.T) {
	for _, typ := range keyring.Types {
		k := testKey(t, typ)
		pub := publicOf(t, k.Latest())
		tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if want := b64url(tp); k.Latest().KID != want {
			t.Errorf("%s: kid %s, go-jose thumbprint %s", typ, k.Latest().KID, want)
		}
	}
}

// The JWK Set holds the published versions, newest first, and go-jose
// reads each back to the version's public key.
func TestJWKSParsesWithGoJose(t *testing.T) {
	k := freshKey(t, keyring.TypeRSA2048)
	for i := 0; i < 2; i++ {
		if err := k.Rotate(nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.SetMinVersion(2); err != nil {
		t.Fatal(err)
	}
	set, err := k.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(set)
	var parsed jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &parsed); err != nil {
		t.Fatalf("go-jose cannot read %s: %v", raw, err)
	}
	if len(parsed.Keys) != 2 {
		t.Fatalf("%d keys, want versions 2 and 3", len(parsed.Keys))
	}
	for i, n := range []int{3, 2} {
		v := k.Version(n)
		got := parsed.Keys[i]
		if got.KeyID != v.KID || got.Use != "sig" || got.Algorithm != "PS256" || !got.Valid() || !got.IsPublic() {
			t.Errorf("key %d: kid %s use %s alg %s", i, got.KeyID, got.Use, got.Algorithm)
		}
		if !publicOf(t, v).(interface{ Equal(crypto.PublicKey) bool }).Equal(got.Key) {
			t.Errorf("key %d is not version %d's public key", i, n)
		}
	}
	if len(parsed.Key(k.Version(1).KID)) != 0 {
		t.Error("version 1, below min_version, is still published")
	}
}

// With a certificate attached, that version's JWK carries x5c, which
// go-jose checks against the key.
func TestJWKSCarriesX5C(t *testing.T) {
	k := freshKey(t, keyring.TypeECP256)
	ca := newTestCA(t)
	leafPEM := ca.issueFor(t, k, "tpp.example")
	if err := k.Rotate(nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := k.AttachCertificate(leafPEM + ca.pem); err != nil {
		t.Fatal(err)
	}
	set, _ := k.JWKS()
	raw, _ := json.Marshal(set)
	var parsed jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &parsed); err != nil {
		t.Fatal(err)
	}
	v1 := parsed.Key(k.Version(1).KID)
	if len(v1) != 1 || len(v1[0].Certificates) != 2 {
		t.Fatalf("version 1 JWK: %s", raw)
	}
	if _, err := v1[0].Certificates[0].Verify(x509.VerifyOptions{Roots: ca.pool(), CurrentTime: t0,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("x5c leaf does not chain to the CA: %v", err)
	}
	if v2 := parsed.Key(k.Version(2).KID); len(v2) != 1 || len(v2[0].Certificates) != 0 {
		t.Error("version 2 carries a certificate issued for version 1")
	}
}
