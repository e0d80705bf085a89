package bank

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	uuid "github.com/hashicorp/go-uuid"
)

// ClientAssertionType is RFC 7523's client_assertion_type for a JWT.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a client assertion is valid: long enough
// for clock skew, short enough that a captured one is soon useless.
const AssertionLifetime = 5 * time.Minute

// MinRSAKeyBits is the smallest RSA key accepted for signing.
const MinRSAKeyBits = 2048

// assertionSigner signs RFC 7523 client assertions for one config.
type assertionSigner struct {
	key      crypto.Signer
	alg      jose.SignatureAlgorithm
	keyID    string
	audience string // "" means the token URL
}

// newAssertionSigner checks private_key and signing_alg and builds a signer.
// Errors are *FieldError and never quote the key.
func newAssertionSigner(c *Config) (*assertionSigner, error) {
	return makeAssertionSigner(c.Value(FieldPrivateKey), c.Value(FieldSigningAlg), c.Value(FieldKeyID), c.Value(FieldAssertionAudience))
}

// makeAssertionSigner checks a PEM key and algorithm ("" picks RS256 for RSA,
// ES256 for EC) and builds a signer; audience "" means the token URL.
func makeAssertionSigner(keyPEM, alg, keyID, audience string) (*assertionSigner, error) {
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fieldErr(FieldPrivateKey, "%s", err.Error())
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < MinRSAKeyBits {
			return nil, fieldErr(FieldPrivateKey, "RSA key has %d bits, at least %d are required", k.N.BitLen(), MinRSAKeyBits)
		}
		if alg == "" {
			alg = string(jose.RS256)
		}
		if alg != string(jose.RS256) && alg != string(jose.PS256) {
			return nil, fieldErr(FieldSigningAlg, "must be RS256 or PS256 for an RSA private_key")
		}
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fieldErr(FieldPrivateKey, "EC key must be on curve P-256 (for ES256)")
		}
		if alg == "" {
			alg = string(jose.ES256)
		}
		if alg != string(jose.ES256) {
			return nil, fieldErr(FieldSigningAlg, "must be ES256 for an EC private_key")
		}
	default:
		return nil, fieldErr(FieldPrivateKey, "must be an RSA or EC P-256 key")
	}
	return &assertionSigner{key: key, alg: jose.SignatureAlgorithm(alg), keyID: keyID, audience: audience}, nil
}

// assertionClaims are RFC 7523 section 3's claims.
type assertionClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ID       string `json:"jti"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
}

// sign makes a fresh assertion: iss = sub = clientID, aud = the configured
// assertion audience or tokenURL, a new random jti, exp AssertionLifetime
// after now.
func (s *assertionSigner) sign(clientID, tokenURL string, now time.Time) (string, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if s.keyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), s.keyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	if err != nil {
		return "", err
	}
	jti, err := uuid.GenerateUUID()
	if err != nil {
		return "", err
	}
	aud := s.audience
	if aud == "" {
		aud = tokenURL
	}
	return jwt.Signed(signer).Claims(assertionClaims{Issuer: clientID, Subject: clientID, Audience: aud, ID: jti,
		IssuedAt: now.Unix(), Expiry: now.Add(AssertionLifetime).Unix()}).Serialize()
}
