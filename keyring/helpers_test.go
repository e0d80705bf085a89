package keyring_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

var (
	keysMu sync.Mutex
	keys   = map[string]*keyring.Key{}
)

// testKey returns a one-version key of type typ, generated once per test
// binary (RSA 4096 takes a while); callers must not change it.
func testKey(t *testing.T, typ string) *keyring.Key {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k := keys[typ]; k != nil {
		return k
	}
	k, err := keyring.Generate(typ, nil, t0)
	if err != nil {
		t.Fatalf("generate %s: %v", typ, err)
	}
	keys[typ] = k
	return k
}

// freshKey returns a new key the caller may change.
func freshKey(t *testing.T, typ string) *keyring.Key {
	t.Helper()
	k, err := keyring.Generate(typ, nil, t0)
	if err != nil {
		t.Fatalf("generate %s: %v", typ, err)
	}
	return k
}

func publicOf(t *testing.T, v *keyring.Version) crypto.PublicKey {
	t.Helper()
	pub, err := v.Public()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// verifyRaw checks a JWS-style signature (RSA bytes, or ECDSA R||S) over
// input with crypto/rsa or crypto/ecdsa directly.
func verifyRaw(pub crypto.PublicKey, alg string, input, sig []byte) bool {
	var h crypto.Hash
	switch alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	}
	hh := h.New()
	hh.Write(input)
	digest := hh.Sum(nil)
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] == 'P' {
			return rsa.VerifyPSS(p, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(p, h, digest, sig) == nil
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		return ecdsa.Verify(p, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
	}
	return false
}

func marshalKeyPEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
