package fapi

import (
	"errors"
	"net/url"
	"time"
)

// ClientAssertionType is RFC 7523's client_assertion_type for a JWT.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a client assertion is valid.
const AssertionLifetime = 5 * time.Minute

// ClientAuth authenticates the client in one request to the PAR, token or
// revocation endpoint. The request already carries client_id.
type ClientAuth interface {
	// Method is the token_endpoint_auth_method this is.
	Method() string
	// Authenticate adds the client's credentials to form for a request
	// sent at now, and returns the values it added that are secrets (to be
	// kept out of errors).
	Authenticate(form url.Values, now time.Time) (secrets []string, err error)
}

// JWTSigner signs a JWT's claims (as JSON) with the header typ; a
// *keyring.Key is one.
type JWTSigner interface {
	SignJWT(typ string, claims any) (string, error)
}

// PrivateKeyJWT is private_key_jwt client authentication (RFC 7523
// section 2.2): a fresh assertion per request, addressed to the issuer
// identifier, as FAPI 2.0 (section 5.3.2.1) requires of the audience.
type PrivateKeyJWT struct {
	ClientID string
	Issuer   string // the assertion's aud
	Signer   JWTSigner
}

// assertionClaims are RFC 7523 section 3's claims.
type assertionClaims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	Audience  string `json:"aud"`
	ID        string `json:"jti"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
}

// Method implements ClientAuth.
func (PrivateKeyJWT) Method() string { return AuthPrivateKeyJWT }

// Authenticate adds client_assertion_type and a fresh client_assertion:
// iss = sub = the client ID, aud = the issuer, a random jti, iat and nbf
// now, exp AssertionLifetime later.
func (p PrivateKeyJWT) Authenticate(form url.Values, now time.Time) ([]string, error) {
	if p.Signer == nil || p.ClientID == "" || p.Issuer == "" {
		return nil, errors.New("private_key_jwt needs a client ID, the issuer and a signing key")
	}
	jti, err := randomString()
	if err != nil {
		return nil, err
	}
	a, err := p.Signer.SignJWT("JWT", assertionClaims{Issuer: p.ClientID, Subject: p.ClientID, Audience: p.Issuer,
		ID: jti, IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(AssertionLifetime).Unix()})
	if err != nil {
		return nil, errors.New("cannot sign the client assertion")
	}
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", a)
	return []string{a}, nil
}

// TLSClientAuth is tls_client_auth (RFC 8705 section 2): the client
// certificate, presented by the caller's *http.Client, authenticates the
// client; the form carries only client_id.
type TLSClientAuth struct{}

// Method implements ClientAuth.
func (TLSClientAuth) Method() string { return AuthTLSClientAuth }

// Authenticate adds nothing: the TLS layer authenticates.
func (TLSClientAuth) Authenticate(url.Values, time.Time) ([]string, error) { return nil, nil }
