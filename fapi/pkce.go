package fapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
)

// CodeChallengeMethod is the only PKCE method used: S256 (RFC 7636
// section 4.2).
const CodeChallengeMethod = "S256"

// randomBytes is the entropy of a verifier, state or nonce: 256 bits
// (RFC 7636 section 7.1 asks at least 256 bits for the verifier; FAPI 2.0
// at least 128 for state and nonce).
const randomBytes = 32

var b64 = base64.RawURLEncoding

// PKCE is a code verifier and its S256 challenge.
type PKCE struct {
	Verifier  string
	Challenge string
}

// NewPKCE makes a verifier of 43 characters from 32 bytes of crypto/rand
// (RFC 7636 section 4.1) and its S256 challenge.
func NewPKCE() (PKCE, error) {
	v, err := randomString()
	if err != nil {
		return PKCE{}, err
	}
	return PKCE{Verifier: v, Challenge: S256Challenge(v)}, nil
}

// S256Challenge is BASE64URL(SHA256(verifier)) (RFC 7636 section 4.2).
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return b64.EncodeToString(sum[:])
}

// ValidVerifier reports whether v is a code verifier RFC 7636 section 4.1
// allows: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// NewState makes an unguessable state value (256 bits, base64url).
func NewState() (string, error) { return randomString() }

// NewNonce makes an unguessable OpenID Connect nonce (256 bits, base64url).
func NewNonce() (string, error) { return randomString() }

// StateEqual compares the state the callback brought with the one sent, in
// time that does not depend on where they differ.
func StateEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func randomString() (string, error) {
	b := make([]byte, randomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", errors.New("no randomness available")
	}
	return b64.EncodeToString(b), nil
}
