package fapi_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
)

// idCheck is the ID token check of the world's client for nonce.
func (w *world) idCheck(nonce string) fapi.IDTokenCheck {
	return fapi.IDTokenCheck{Issuer: w.meta.Issuer, ClientID: clientID, Nonce: nonce, Now: w.clock.Now()}
}

func TestIDTokenChecks(t *testing.T) {
	w := newWorld(t)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	const nonce = "the-attempts-nonce-value"
	for _, c := range []struct {
		name  string
		edit  func(map[string]any)
		key   any // signing key; nil: the AS's
		kid   string
		check func(*fapi.IDTokenCheck)
		want  string
	}{
		{name: "good"},
		{name: "wrong nonce", edit: func(m map[string]any) { m["nonce"] = "another-attempts-nonce" }, want: fapi.CheckNonce},
		{name: "no nonce", edit: func(m map[string]any) { delete(m, "nonce") }, want: fapi.CheckNonce},
		{name: "wrong aud", edit: func(m map[string]any) { m["aud"] = "another-client" }, want: fapi.CheckAudience},
		{name: "aud list with azp", edit: func(m map[string]any) { m["aud"] = []string{clientID, "rs"}; m["azp"] = clientID }},
		{name: "aud list without azp", edit: func(m map[string]any) { m["aud"] = []string{clientID, "rs"} }, want: fapi.CheckAZP},
		{name: "wrong azp", edit: func(m map[string]any) { m["azp"] = "another-client" }, want: fapi.CheckAZP},
		{name: "wrong iss", edit: func(m map[string]any) { m["iss"] = "https://evil.example" }, want: fapi.CheckIssuer},
		{name: "expired", edit: func(m map[string]any) { m["exp"] = t0.Add(-fapi.DefaultSkew).Unix() }, want: fapi.CheckExpiry},
		{name: "expired within skew", edit: func(m map[string]any) { m["exp"] = t0.Add(-fapi.DefaultSkew + time.Second).Unix() }},
		{name: "no exp", edit: func(m map[string]any) { delete(m, "exp") }, want: fapi.CheckExpiry},
		{name: "issued in the future", edit: func(m map[string]any) { m["iat"] = t0.Add(2 * fapi.DefaultSkew).Unix() }, want: fapi.CheckIssuedAt},
		{name: "no sub", edit: func(m map[string]any) { delete(m, "sub") }, want: fapi.CheckSubject},
		{name: "bad signature", key: otherKey, want: fapi.CheckSignature},
		{name: "unknown kid", kid: "as-key-2", want: fapi.CheckSignature},
		{name: "PS256 by a key not in the set", key: rsaKey, want: fapi.CheckSignature},
		{name: "alg not allowed", check: func(c *fapi.IDTokenCheck) { c.Algs = []string{"PS256"} }, want: fapi.CheckAlg},
		{name: "nonce optional, none", edit: func(m map[string]any) { delete(m, "nonce") }, check: func(c *fapi.IDTokenCheck) { c.NonceOptional = true }},
		{name: "nonce optional, wrong", edit: func(m map[string]any) { m["nonce"] = "x-other-nonce" }, check: func(c *fapi.IDTokenCheck) { c.NonceOptional = true }, want: fapi.CheckNonce},
	} {
		claims := map[string]any{"iss": w.meta.Issuer, "sub": "alice", "aud": clientID, "nonce": nonce,
			"iat": t0.Unix(), "exp": t0.Add(5 * time.Minute).Unix()}
		if c.edit != nil {
			c.edit(claims)
		}
		key := any(w.as.asKey)
		if c.key != nil {
			key = c.key
		}
		kid := w.as.asKID
		if c.kid != "" {
			kid = c.kid
		}
		raw := signJWT(t, key.(crypto.Signer), kid, claims)
		chk := w.idCheck(nonce)
		if c.check != nil {
			c.check(&chk)
		}
		keys := &fapi.JWKS{HTTP: noRedirects(), URL: w.meta.JWKSURI}
		_, err := fapi.ValidateIDToken(t.Context(), raw, keys, chk)
		var ie *fapi.IDTokenError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!asError(err, &ie) || ie.Check != c.want):
			t.Errorf("%s: %v, want check %s", c.name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), nonce) || strings.Contains(err.Error(), raw)) {
			t.Errorf("%s: the error shows the nonce or the token: %v", c.name, err)
		}
	}
	for _, bad := range []string{"", "a.b", "!!!.e30.sig", "eyJhbGciOiJub25lIn0.e30."} {
		keys := &fapi.JWKS{HTTP: noRedirects(), URL: w.meta.JWKSURI}
		if _, err := fapi.ValidateIDToken(t.Context(), bad, keys, w.idCheck(nonce)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The JWK Set is fetched once and kept by kid; an unknown kid fetches it
// again, at most once per MinRefetch.
func TestJWKSCache(t *testing.T) {
	w := newWorld(t)
	keys := &fapi.JWKS{HTTP: noRedirects(), URL: w.meta.JWKSURI}
	claims := map[string]any{"iss": w.meta.Issuer, "sub": "alice", "aud": clientID, "nonce": "n-123456", "iat": t0.Unix(), "exp": t0.Add(time.Minute).Unix()}
	good := signJWT(t, w.as.asKey, w.as.asKID, claims)
	for i := 0; i < 3; i++ {
		if _, err := fapi.ValidateIDToken(t.Context(), good, keys, w.idCheck("n-123456")); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.as.Hits("/jwks"); n != 1 || keys.Fetches() != 1 {
		t.Fatalf("JWKS fetched %d times for one kid", n)
	}
	unknown := signJWT(t, w.as.asKey, "rotated-kid", claims)
	if _, err := fapi.ValidateIDToken(t.Context(), unknown, keys, w.idCheck("n-123456")); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if n := w.as.Hits("/jwks"); n != 1 {
		t.Errorf("unknown kid within MinRefetch fetched again (%d)", n)
	}
	w.clock.Add(fapi.DefaultMinRefetch)
	chk := w.idCheck("n-123456")
	chk.Now = w.clock.Now()
	if _, err := fapi.ValidateIDToken(t.Context(), unknown, keys, chk); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if n := w.as.Hits("/jwks"); n != 2 {
		t.Errorf("unknown kid after MinRefetch: %d fetches, want 2", n)
	}
}
