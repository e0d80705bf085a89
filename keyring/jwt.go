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
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
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
