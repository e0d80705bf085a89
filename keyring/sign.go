package keyring

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// scheme is how one algorithm signs: a hash, and for RSA the padding.
type scheme struct {
	hash crypto.Hash
	pss  bool // RSASSA-PSS with a salt as long as the hash (RFC 7518 3.5, RFC 9421 3.3.1)
	ec   bool
}

// jwsSchemes are the JWS algorithms a key can sign with.
var jwsSchemes = map[string]scheme{
	"RS256": {hash: crypto.SHA256}, "RS384": {hash: crypto.SHA384}, "RS512": {hash: crypto.SHA512},
	"PS256": {hash: crypto.SHA256, pss: true}, "PS384": {hash: crypto.SHA384, pss: true},
	"PS512": {hash: crypto.SHA512, pss: true},
	"ES256": {hash: crypto.SHA256, ec: true}, "ES384": {hash: crypto.SHA384, ec: true},
}

// checkAlg says whether the key type can sign with JWS algorithm alg.
func checkAlg(typ, alg string) error {
	s, ok := jwsSchemes[alg]
	if !ok {
		return errors.New("must be one of PS256, PS384, PS512, RS256, RS384, RS512, ES256, ES384")
	}
	switch {
	case typ == TypeECP256 && alg != "ES256", typ == TypeECP384 && alg != "ES384":
		return fmt.Errorf("%s keys sign with %s only", typ, DefaultAlg(typ))
	case !s.ec && (typ == TypeECP256 || typ == TypeECP384), s.ec && typ != TypeECP256 && typ != TypeECP384:
		return fmt.Errorf("%s cannot sign with a %s key", alg, typ)
	}
	return nil
}

// signRaw signs input with the scheme and returns the signature as JWS and
// RFC 9421 carry it: RSA signature bytes, or ECDSA R||S at the curve's size.
func signRaw(signer crypto.Signer, s scheme, input []byte) ([]byte, error) {
	h := s.hash.New()
	h.Write(input)
	digest := h.Sum(nil)
	var opts crypto.SignerOpts = s.hash
	if s.pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: s.hash}
	}
	sig, err := signer.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, errors.New("signing failed")
	}
	if !s.ec {
		return sig, nil
	}
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("signing failed")
	}
	return asn1ToRaw(sig, (pub.Curve.Params().BitSize+7)/8)
}

// asn1ToRaw turns an ASN.1 ECDSA signature into R||S, each size bytes.
func asn1ToRaw(der []byte, size int) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return nil, errors.New("signing failed")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}
