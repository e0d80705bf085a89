package keyring

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Key types a key can be generated as.
const (
	TypeRSA2048 = "rsa-2048"
	TypeRSA3072 = "rsa-3072"
	TypeRSA4096 = "rsa-4096"
	TypeECP256  = "ec-p256"
	TypeECP384  = "ec-p384"
)

// Types lists the key types, in the order help text shows them.
var Types = []string{TypeRSA2048, TypeRSA3072, TypeRSA4096, TypeECP256, TypeECP384}

// Key is a named signing key: its versions, which of them are published,
// and the certificate attached to one of them. It is stored as JSON.
type Key struct {
	Type       string     `json:"type"`
	PublicJWKS bool       `json:"public_jwks"`
	MinVersion int        `json:"min_version"`
	Versions   []*Version `json:"versions"` // Versions[i].Number == i+1
	Imported   bool       `json:"imported,omitempty"`
	// Certificate is the attached chain, leaf first, if any.
	Certificate *Certificate `json:"certificate,omitempty"`
	Uses                     // purposes and pins, stored inline (uses.go)
}

// Version is one key pair of a Key.
type Version struct {
	Number    int        `json:"number"`
	KID       string     `json:"kid"`
	CreatedAt time.Time  `json:"created_at"`
	Private   PrivateDER `json:"private"`
}

// PrivateDER is a PKCS #8 private key. It prints as "<redacted>" with every
// fmt verb, so a Key or Version logged by mistake shows no key material; it
// still marshals to JSON for storage.
type PrivateDER []byte

// Format implements fmt.Formatter.
func (PrivateDER) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "<redacted>") }

// Generate makes a Key of type typ with one version created at now, reading
// randomness from r (crypto/rand when nil).
func Generate(typ string, r io.Reader, now time.Time) (*Key, error) {
	k := &Key{Type: typ, MinVersion: 1}
	if err := k.Rotate(r, now); err != nil {
		return nil, err
	}
	return k, nil
}

// Import makes a Key of one version from a PEM private key (PKCS #1, PKCS #8
// or SEC 1). Its type follows from the key; other sizes and curves are
// refused. Errors never quote the PEM.
func Import(pemText string, now time.Time) (*Key, error) {
	signer, err := ParsePrivateKeyPEM(pemText)
	if err != nil {
		return nil, err
	}
	typ, err := typeOf(signer.Public())
	if err != nil {
		return nil, err
	}
	k := &Key{Type: typ, MinVersion: 1, Imported: true}
	if err := k.addVersion(signer, now); err != nil {
		return nil, err
	}
	return k, nil
}

// ParsePrivateKeyPEM reads one RSA or EC private key from PEM. Its errors
// say what is wrong without quoting the input.
func ParsePrivateKeyPEM(pemText string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("is not a PEM private key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("must be an RSA or EC private key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("is not a PKCS #1, PKCS #8 or SEC 1 private key")
}

// typeOf names the key type of a public key, or refuses it.
func typeOf(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		switch p.N.BitLen() {
		case 2048:
			return TypeRSA2048, nil
		case 3072:
			return TypeRSA3072, nil
		case 4096:
			return TypeRSA4096, nil
		}
		return "", fmt.Errorf("RSA key has %d bits; 2048, 3072 or 4096 are accepted", p.N.BitLen())
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return TypeECP256, nil
		case elliptic.P384():
			return TypeECP384, nil
		}
		return "", errors.New("EC key must be on curve P-256 or P-384")
	}
	return "", errors.New("must be an RSA or EC private key")
}

// newSigner generates a private key of type typ.
func newSigner(typ string, r io.Reader) (crypto.Signer, error) {
	if r == nil {
		r = rand.Reader
	}
	switch typ {
	case TypeRSA2048:
		return rsa.GenerateKey(r, 2048)
	case TypeRSA3072:
		return rsa.GenerateKey(r, 3072)
	case TypeRSA4096:
		return rsa.GenerateKey(r, 4096)
	case TypeECP256:
		return ecdsa.GenerateKey(elliptic.P256(), r)
	case TypeECP384:
		return ecdsa.GenerateKey(elliptic.P384(), r)
	}
	return nil, fmt.Errorf("is not a key type: use one of %s", strings.Join(Types, ", "))
}

// Rotate adds a version of the key's type, generated now, and makes it the
// signing one. Older versions from MinVersion on stay published.
func (k *Key) Rotate(r io.Reader, now time.Time) error {
	signer, err := newSigner(k.Type, r)
	if err != nil {
		return err
	}
	return k.addVersion(signer, now)
}

func (k *Key) addVersion(signer crypto.Signer, now time.Time) error {
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return errors.New("cannot encode the private key")
	}
	kid, err := Thumbprint(signer.Public())
	if err != nil {
		return err
	}
	k.Versions = append(k.Versions, &Version{Number: len(k.Versions) + 1, KID: kid,
		CreatedAt: now.UTC(), Private: der})
	return nil
}

// LatestVersion is the number of the signing version.
func (k *Key) LatestVersion() int { return len(k.Versions) }

// Latest is the signing version.
func (k *Key) Latest() *Version { return k.Versions[len(k.Versions)-1] }

// Version returns version n, or nil.
func (k *Key) Version(n int) *Version {
	if n < 1 || n > len(k.Versions) {
		return nil
	}
	return k.Versions[n-1]
}

// Published lists the versions from MinVersion to the latest: the ones a
// JWK Set shows and a bank may still verify against.
func (k *Key) Published() []*Version {
	minV := k.MinVersion
	if minV < 1 {
		minV = 1
	}
	return k.Versions[minV-1:]
}

// SetMinVersion sets the oldest published version: 1 to the latest.
func (k *Key) SetMinVersion(n int) error {
	if n < 1 || n > k.LatestVersion() {
		return fmt.Errorf("must be between 1 and the latest version, %d", k.LatestVersion())
	}
	k.MinVersion = n
	return nil
}

// SetKID names the latest version's key ID (the one a bank's directory
// assigned, say) in place of its thumbprint. It must be printable ASCII
// without quotes or backslashes, and no other version may have it.
func (k *Key) SetKID(kid string) error {
	if err := checkKID(kid); err != nil {
		return err
	}
	for _, v := range k.Versions[:len(k.Versions)-1] {
		if v.KID == kid {
			return fmt.Errorf("is already version %d's key ID", v.Number)
		}
	}
	k.Latest().KID = kid
	return nil
}

func checkKID(kid string) error {
	if kid == "" || len(kid) > 256 {
		return errors.New("must be 1 to 256 characters")
	}
	for _, c := range kid {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return errors.New("must be printable ASCII without spaces, quotes or backslashes")
		}
	}
	return nil
}

// Signer is the version's private key.
func (v *Version) Signer() (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(v.Private)
	if err != nil {
		return nil, fmt.Errorf("stored key version %d cannot be read", v.Number)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("stored key version %d is not a signing key", v.Number)
	}
	return s, nil
}

// Public is the version's public key.
func (v *Version) Public() (crypto.PublicKey, error) {
	s, err := v.Signer()
	if err != nil {
		return nil, err
	}
	return s.Public(), nil
}

// PublicPEM is the version's public key as a PEM "PUBLIC KEY" (SPKI).
func (v *Version) PublicPEM() (string, error) {
	pub, err := v.Public()
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
