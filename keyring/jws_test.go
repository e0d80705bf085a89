package keyring_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

var allAlgs = []jose.SignatureAlgorithm{jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384}

// go-jose verifies the detached JWS of every key type, with b64 false
// (RFC 7797, the default) and true, against the payload given separately.
func TestDetachedJWSVerifiedByGoJose(t *testing.T) {
	payload := []byte(`{"Data":{"Initiation":{"InstructedAmount":{"Amount":"10.00","Currency":"GBP"}}}}`)
	for _, typ := range keyring.Types {
		k := testKey(t, typ)
		for _, b64 := range []bool{false, true} {
			sig, kid, alg, err := k.SignDetachedJWS(payload, keyring.JWSOptions{B64: b64})
			if err != nil {
				t.Fatalf("%s b64=%v: %v", typ, b64, err)
			}
			if alg != keyring.DefaultAlg(typ) || kid != k.Latest().KID {
				t.Errorf("%s: alg %s kid %s", typ, alg, kid)
			}
			parts := strings.Split(sig, ".")
			if len(parts) != 3 || parts[1] != "" {
				t.Fatalf("%s: not <protected>..<signature>: %s", typ, sig)
			}
			obj, err := jose.ParseDetached(sig, payload, allAlgs)
			if err != nil {
				t.Fatalf("%s b64=%v: go-jose parse: %v", typ, b64, err)
			}
			jwk := jose.JSONWebKey{Key: publicOf(t, k.Latest())}
			if err := obj.DetachedVerify(payload, jwk.Key); err != nil {
				t.Errorf("%s b64=%v: go-jose verify: %v", typ, b64, err)
			}
			if err := obj.DetachedVerify(append(payload, ' '), jwk.Key); err == nil {
				t.Errorf("%s b64=%v: verified over a changed payload", typ, b64)
			}
			h := obj.Signatures[0].Protected
			if h.KeyID != kid || h.Algorithm != alg {
				t.Errorf("%s: header kid %s alg %s", typ, h.KeyID, h.Algorithm)
			}
			hdr := protectedHeader(t, sig)
			if b64 == (hdr["b64"] == false) {
				t.Errorf("%s b64=%v: header %v", typ, b64, hdr)
			}
		}
	}
}

// UK Open Banking's header members and crit names: go-jose refuses crit
// names it does not know, so the signing input is rebuilt here and checked
// with crypto/rsa directly.
func TestDetachedJWSWithOpenBankingHeader(t *testing.T) {
	k := testKey(t, keyring.TypeRSA2048)
	payload := []byte(`{"Data":{}}`)
	iat, iss, tan := "http://openbanking.org.uk/iat", "http://openbanking.org.uk/iss", "http://openbanking.org.uk/tan"
	sig, _, alg, err := k.SignDetachedJWS(payload, keyring.JWSOptions{Alg: "PS256",
		Header: map[string]any{iat: 1732870000, iss: "0015800001041RHAAY/abc", tan: "openbanking.org.uk",
			"typ": "JOSE", "cty": "application/json"},
		Crit: []string{iat, iss, tan}})
	if err != nil {
		t.Fatal(err)
	}
	hdr := protectedHeader(t, sig)
	crit, _ := hdr["crit"].([]any)
	if alg != "PS256" || hdr["b64"] != false || hdr[iss] != "0015800001041RHAAY/abc" || hdr["typ"] != "JOSE" ||
		!slices.Equal(crit, []any{"b64", iat, iss, tan}) {
		t.Errorf("header %v", hdr)
	}
	parts := strings.Split(sig, ".")
	input := append([]byte(parts[0]+"."), payload...)
	raw, _ := base64.RawURLEncoding.DecodeString(parts[2])
	jwk := jose.JSONWebKey{Key: publicOf(t, k.Latest())}
	if !verifyRaw(jwk.Key, "PS256", input, raw) {
		t.Error("crypto/rsa does not verify the RFC 7797 signing input")
	}
	if verifyRaw(jwk.Key, "PS256", append([]byte(parts[0]+"."), b64url(payload)...), raw) {
		t.Error("the signature covers the encoded payload although b64 is false")
	}
}

func TestDetachedJWSAlgorithms(t *testing.T) {
	rsaKey := testKey(t, keyring.TypeRSA2048)
	payload := []byte("x")
	for _, alg := range []string{"RS256", "PS384", "PS512"} {
		sig, _, _, err := rsaKey.SignDetachedJWS(payload, keyring.JWSOptions{Alg: alg, B64: true})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		obj, err := jose.ParseDetached(sig, payload, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil || obj.DetachedVerify(payload, publicOf(t, rsaKey.Latest())) != nil {
			t.Errorf("%s: go-jose does not verify: %v", alg, err)
		}
	}
	bad := []struct {
		k     *keyring.Key
		opts  keyring.JWSOptions
		field string
	}{
		{rsaKey, keyring.JWSOptions{Alg: "ES256"}, "alg"},
		{rsaKey, keyring.JWSOptions{Alg: "none"}, "alg"},
		{rsaKey, keyring.JWSOptions{Alg: "HS256"}, "alg"},
		{testKey(t, keyring.TypeECP256), keyring.JWSOptions{Alg: "ES384"}, "alg"},
		{testKey(t, keyring.TypeECP384), keyring.JWSOptions{Alg: "PS256"}, "alg"},
		{rsaKey, keyring.JWSOptions{Header: map[string]any{"alg": "none"}}, "header"},
		{rsaKey, keyring.JWSOptions{Header: map[string]any{"kid": "x"}}, "header"},
		{rsaKey, keyring.JWSOptions{Crit: []string{"http://openbanking.org.uk/iat"}}, "crit"},
	}
	for _, c := range bad {
		_, _, _, err := c.k.SignDetachedJWS(payload, c.opts)
		var fe *keyring.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: got %v, want an error naming %s", c.opts, err, c.field)
		}
	}
}

func protectedHeader(t *testing.T, jws string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jws, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(raw, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr
}
