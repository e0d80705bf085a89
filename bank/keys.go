package bank

import (
	"crypto/sha256"
	"crypto/tls"
	"time"

	uuid "github.com/hashicorp/go-uuid"
)

// Config fields that name a key the plugin keeps (bankauth/key/<name>)
// instead of holding a PEM private key.
const (
	FieldSigningKey = "signing_key"
	FieldTLSKey     = "tls_key"
	FieldDPoPKey    = "dpop_key"
)

// KeySigner is a key kept outside the config. The client signs with it and
// presents its certificate, but never sees its private bytes as text.
type KeySigner interface {
	// KID is the key ID of the version that signs.
	KID() string
	// SignJWT signs claims as a compact JWS, with the key's algorithm and
	// kid, and typ when not empty, in the header.
	SignJWT(typ string, claims any) (string, error)
	// DPoPProof makes an RFC 9449 proof for a request: htm, htu, a fresh
	// jti, iat now, nonce when not empty, and ath when accessToken is set.
	DPoPProof(htm, htu, nonce, accessToken string, now time.Time) (string, error)
	// TLSCertificate is the attached certificate chain with its key.
	TLSCertificate() (*tls.Certificate, error)
	// Use is what the key's owner allows it for: purposes and, for client
	// assertions, pins. It is checked when a config is written and again
	// when each client assertion is signed (keyAssertion).
	Use() KeyUse
}

// Keys are the keys a config's key fields name, resolved by the plugin
// before the config is validated or used (see UseKeys).
type Keys struct {
	Signing KeySigner // signing_key
	TLS     KeySigner // tls_key
	DPoP    KeySigner // dpop_key
}

// UseKeys gives the config the keys its signing_key, tls_key and dpop_key
// name.
func (c *Config) UseKeys(k Keys) { c.keys = k }

// Keys returns the keys UseKeys gave the config.
func (c *Config) Keys() Keys { return c.keys }

// keyFields describe the key fields; every provider accepts tls_key, and
// oauth2 signing_key and dpop_key (validateKeys).
var keyFields = []Field{
	{Name: FieldSigningKey, Description: "Name of a key at key/<name> that signs the private_key_jwt client assertion (kid in the header), instead of private_key."},
	{Name: FieldTLSKey, Description: "Name of a key at key/<name> whose attached certificate and key do mutual TLS (and tls_client_auth), instead of tls_client_cert and tls_client_key."},
	{Name: FieldDPoPKey, Description: "oauth2 and operators' profiles: name of a key at key/<name> that signs a DPoP proof (RFC 9449) on every token request (a profile's last step, the one answering with the token); tokens are then DPoP-bound."},
}

// KeyFields lists the config fields that name a key.
func KeyFields() []Field { return keyFields }

func isKeyField(name string) bool {
	return name == FieldSigningKey || name == FieldTLSKey || name == FieldDPoPKey
}

// isOperatorProfile reports whether the config's provider is a profile an
// operator wrote (not one of the built-in banks, none of which uses DPoP).
func (c *Config) isOperatorProfile() bool {
	if _, builtin := Lookup(c.Provider); builtin {
		return false
	}
	p, ok := c.Lookup()
	if !ok {
		return false
	}
	_, profile := p.(*profileProvider)
	return profile
}

// validateKeys checks the key fields: one kind of credential per use, each
// named key resolved, and signing_key and dpop_key only where they apply.
func (c *Config) validateKeys() error {
	if c.Settings[FieldSigningKey] != "" {
		switch {
		case c.Provider != "oauth2" && !c.profileAsserts():
			return fieldErr(FieldSigningKey, "applies to provider oauth2 with auth_method private_key_jwt, or a profile whose steps send a client_assertion")
		case c.Value(FieldPrivateKey) != "":
			return fieldErr(FieldSigningKey, "a config names signing_key or private_key, not both")
		case c.keys.Signing == nil:
			return fieldErr(FieldSigningKey, "names no key; write key/%s first", c.Settings[FieldSigningKey])
		}
		use := c.keys.Signing.Use()
		if err := use.Require(PurposeClientAuth); err != nil {
			return fieldErr(FieldSigningKey, "%s", err)
		}
		for _, t := range c.AssertionTargets() {
			if err := use.PermitAssertion(t.Endpoint, t.Audience); err != nil {
				return fieldErr(FieldSigningKey, "%s", err)
			}
		}
	}
	if c.Settings[FieldTLSKey] != "" {
		switch {
		case c.TLSClientCert != "" || c.TLSClientKey != "":
			return fieldErr(FieldTLSKey, "a config names tls_key or tls_client_cert and tls_client_key, not both")
		case c.keys.TLS == nil:
			return fieldErr(FieldTLSKey, "names no key; write key/%s first", c.Settings[FieldTLSKey])
		}
		if err := c.keys.TLS.Use().Require(PurposeTLS); err != nil {
			return fieldErr(FieldTLSKey, "%s", err)
		}
		if _, err := c.keys.TLS.TLSCertificate(); err != nil {
			return fieldErr(FieldTLSKey, "%s", err.Error())
		}
	}
	if c.Settings[FieldDPoPKey] != "" {
		switch {
		case c.Provider != "oauth2" && !c.isOperatorProfile():
			return fieldErr(FieldDPoPKey, "applies to provider oauth2 and to profiles written to profile/<name>")
		case c.keys.DPoP == nil:
			return fieldErr(FieldDPoPKey, "names no key; write key/%s first", c.Settings[FieldDPoPKey])
		}
		if err := c.keys.DPoP.Use().Require(PurposeDPoP); err != nil {
			return fieldErr(FieldDPoPKey, "%s", err)
		}
	}
	return nil
}

// keyAssertion signs an RFC 7523 client assertion with a kept key, to be
// sent to endpoint: the same claims as a PEM key's, kid from the key. It
// is the one place a kept key signs a client assertion, and it refuses
// one that would go outside the key's pins (KeyUse.PermitAssertion),
// whatever the config says.
func keyAssertion(k KeySigner, clientID, audience, endpoint string, now time.Time) (string, error) {
	if audience == "" {
		audience = endpoint
	}
	if err := k.Use().PermitAssertion(endpoint, audience); err != nil {
		return "", err
	}
	jti, err := uuid.GenerateUUID()
	if err != nil {
		return "", err
	}
	return k.SignJWT("JWT", assertionClaims{Issuer: clientID, Subject: clientID, Audience: audience, ID: jti,
		IssuedAt: now.Unix(), Expiry: now.Add(AssertionLifetime).Unix()})
}

// keyTransportKey identifies a connection whose client certificate comes
// from a kept key: the CA bundle, the key name and the certificate chain
// (a new certificate or key version makes a new transport).
func keyTransportKey(cfg *Config, k KeySigner) string {
	h := sha256.New()
	h.Write([]byte(cfg.Settings[FieldTLSKey]))
	if c, err := k.TLSCertificate(); err == nil {
		for _, der := range c.Certificate {
			h.Write(der)
		}
	}
	return cfg.CACert + "\x00key:" + string(h.Sum(nil))
}

// profileAsserts says whether the config's provider is a profile with a
// step that sends a client assertion, which signing_key then signs.
func (c *Config) profileAsserts() bool {
	p, ok := c.Lookup()
	if !ok {
		return false
	}
	pp, ok := p.(*profileProvider)
	if !ok {
		return false
	}
	for _, s := range pp.p.Steps {
		if s.Assertion != nil {
			return true
		}
	}
	return false
}
