package keyring

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
)

var b64 = base64.RawURLEncoding

// JWK is a public JSON Web Key (RFC 7517, RFC 7518 section 6).
type JWK struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid,omitempty"`
	Use string   `json:"use,omitempty"`
	Alg string   `json:"alg,omitempty"`
	N   string   `json:"n,omitempty"`
	E   string   `json:"e,omitempty"`
	Crv string   `json:"crv,omitempty"`
	X   string   `json:"x,omitempty"`
	Y   string   `json:"y,omitempty"`
	X5c []string `json:"x5c,omitempty"`
}

// JWKSet is a JWK Set: {"keys":[...]}.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// bareJWK holds only a public key's required members, the ones RFC 7638
// hashes and RFC 9449 puts in a DPoP proof's header.
func bareJWK(pub crypto.PublicKey) (JWK, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return JWK{Kty: "RSA", N: b64.EncodeToString(p.N.Bytes()),
			E: b64.EncodeToString(big.NewInt(int64(p.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		size := (p.Curve.Params().BitSize + 7) / 8
		crv := map[elliptic.Curve]string{elliptic.P256(): "P-256", elliptic.P384(): "P-384"}[p.Curve]
		if crv == "" {
			return JWK{}, errors.New("unsupported curve")
		}
		ecdh, err := p.ECDH()
		if err != nil {
			return JWK{}, errors.New("invalid EC public key")
		}
		raw := ecdh.Bytes() // 0x04 || X || Y, each size bytes
		return JWK{Kty: "EC", Crv: crv, X: b64.EncodeToString(raw[1 : 1+size]),
			Y: b64.EncodeToString(raw[1+size:])}, nil
	}
	return JWK{}, errors.New("must be an RSA or EC key")
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key,
// base64url-encoded: the required members in lexicographic order, no
// whitespace.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	j, err := bareJWK(pub)
	if err != nil {
		return "", err
	}
	var canon []byte
	if j.Kty == "RSA" {
		canon, _ = json.Marshal(struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{j.E, j.Kty, j.N})
	} else {
		canon, _ = json.Marshal(struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{j.Crv, j.Kty, j.X, j.Y})
	}
	sum := sha256.Sum256(canon)
	return b64.EncodeToString(sum[:]), nil
}

// DefaultAlg is the JWS algorithm a key type signs with unless told
// otherwise: PS256 for RSA, ES256 for P-256, ES384 for P-384.
func DefaultAlg(typ string) string {
	switch typ {
	case TypeECP256:
		return "ES256"
	case TypeECP384:
		return "ES384"
	}
	return "PS256"
}

// JWK is the public JWK of version v: kid, use "sig", the key type's
// default alg, and x5c when the attached certificate is v's.
func (k *Key) JWK(v *Version) (JWK, error) {
	pub, err := v.Public()
	if err != nil {
		return JWK{}, err
	}
	j, err := bareJWK(pub)
	if err != nil {
		return JWK{}, err
	}
	j.Kid, j.Use, j.Alg = v.KID, "sig", DefaultAlg(k.Type)
	if c := k.Certificate; c != nil && c.Version == v.Number {
		for _, der := range c.Chain {
			j.X5c = append(j.X5c, base64.StdEncoding.EncodeToString(der))
		}
	}
	return j, nil
}

// JWKS is the JWK Set of the published versions, newest first.
func (k *Key) JWKS() (JWKSet, error) {
	set := JWKSet{Keys: []JWK{}}
	pub := k.Published()
	for i := len(pub) - 1; i >= 0; i-- {
		j, err := k.JWK(pub[i])
		if err != nil {
			return JWKSet{}, err
		}
		set.Keys = append(set.Keys, j)
	}
	return set, nil
}
