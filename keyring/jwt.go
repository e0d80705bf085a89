package keyring

import (
	"crypto/tls"
	"encoding/json"
	"errors"
)

// SignJWT signs claims as a compact JWS with the latest version: header
// alg (the key type's default), kid and, when not empty, typ. It is what
// signs a private_key_jwt client assertion.
func (k *Key) SignJWT(typ string, claims any) (string, error) {
	v := k.Latest()
	alg := DefaultAlg(k.Type)
	hdr := map[string]any{"alg": alg, "kid": v.KID}
	if typ != "" {
		hdr["typ"] = typ
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", errors.New("claims cannot be encoded as JSON")
	}
	return v.signCompact(alg, h, c)
}

// signCompact signs header.claims (both JSON, base64url-encoded here) with
// v and returns the compact JWS.
func (v *Version) signCompact(alg string, header, claims []byte) (string, error) {
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(claims)
	signer, err := v.Signer()
	if err != nil {
		return "", err
	}
	sig, err := signRaw(signer, jwsSchemes[alg], []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// TLSCertificate is the attached chain with the private key of the version
// it certifies, for mutual TLS. It fails when no certificate is attached.
func (k *Key) TLSCertificate() (*tls.Certificate, error) {
	c := k.Certificate
	leaf := c.Leaf()
	if leaf == nil {
		return nil, errors.New("has no certificate attached: write key/<name>/certificate first")
	}
	v := k.Version(c.Version)
	if v == nil {
		return nil, errors.New("certificate names a key version that does not exist")
	}
	signer, err := v.Signer()
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: c.Chain, PrivateKey: signer, Leaf: leaf}, nil
}
