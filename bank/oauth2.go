package bank

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// oauth2 fields and their values.
const (
	FieldTokenURL          = "token_url"
	FieldAudience          = "audience"
	FieldAuthMethod        = "auth_method"
	FieldBasicEncoding     = "basic_encoding"
	FieldPrivateKey        = "private_key"
	FieldKeyID             = "key_id"
	FieldSigningAlg        = "signing_alg"
	FieldAssertionAudience = "assertion_audience"

	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthTLSClientAuth     = "tls_client_auth"

	BasicEncodingRFC6749 = "rfc6749"
	BasicEncodingRaw     = "raw"
)

// oauth2Provider is any RFC 6749 token endpoint, client credentials grant,
// with the client authenticated by one of the methods registered for OAuth
// (RFC 6749 section 2.3.1, RFC 7523, RFC 8705).
type oauth2Provider struct{}

func init() { register(oauth2Provider{}) }

// selfValidating is a provider with checks of its own beyond its Fields;
// such a provider also decides whether it needs base_url.
type selfValidating interface {
	validate(c *Config) error
}

func (oauth2Provider) Name() string           { return "oauth2" }
func (oauth2Provider) DefaultBaseURL() string { return "" }
func (oauth2Provider) Fields() []Field {
	return append([]Field{
		{Name: FieldTokenURL, Required: true, Description: "oauth2: the token endpoint's full URL (https; http only for loopback)."},
		{Name: FieldClientID, Required: true, Description: "Client ID issued by the bank."},
		{Name: FieldClientSecret, Secret: true, Description: "Client secret issued by the bank (client_secret_basic, client_secret_post). Write-only."},
		{Name: FieldScope, Description: "Space-separated scopes requested."},
		{Name: FieldAudience, Description: "oauth2: audience parameter sent in the token request, for servers that want one."},
		{Name: FieldAuthMethod, Default: AuthClientSecretBasic,
			Description: "oauth2 client authentication: client_secret_basic (default), client_secret_post, private_key_jwt or tls_client_auth."},
		{Name: FieldBasicEncoding, Default: BasicEncodingRFC6749,
			Description: "oauth2 client_secret_basic: rfc6749 (form-encode id and secret before base64, the default) or raw."},
		{Name: FieldPrivateKey, Secret: true, Description: "oauth2 private_key_jwt: PEM private key that signs the client assertion. Write-only."},
		{Name: FieldKeyID, Description: "oauth2 private_key_jwt: kid header of the client assertion."},
		{Name: FieldSigningAlg, Description: "oauth2 private_key_jwt: RS256, PS256 or ES256. Default RS256 for RSA keys, ES256 for EC keys."},
		{Name: FieldAssertionAudience, Description: "oauth2 private_key_jwt: aud claim of the client assertion. Default token_url (the issuer with grant_type authorization_code); UAE and UK open banking want the issuer."},
	}, authCodeFields...)
}

func (p oauth2Provider) validate(c *Config) error {
	if c.BaseURL != "" {
		return fieldErr(FieldBaseURL, "does not apply to provider oauth2 (set token_url)")
	}
	if err := validateEndpointURL(FieldTokenURL, c.Value(FieldTokenURL), true); err != nil {
		return err
	}
	if err := c.validateAuthCode(); err != nil { // authcode.go
		return err
	}
	switch m := c.Value(FieldAuthMethod); m {
	case AuthClientSecretBasic:
		if e := c.Value(FieldBasicEncoding); e != BasicEncodingRFC6749 && e != BasicEncodingRaw {
			return fieldErr(FieldBasicEncoding, "must be rfc6749 or raw")
		}
		fallthrough
	case AuthClientSecretPost:
		if c.Value(FieldClientSecret) == "" {
			return fieldErr(FieldClientSecret, "is required for auth_method %s", m)
		}
	case AuthPrivateKeyJWT:
		if c.Settings[FieldSigningKey] != "" {
			break // validateKeys checks the key
		}
		if c.Value(FieldPrivateKey) == "" {
			return fieldErr(FieldPrivateKey, "is required for auth_method private_key_jwt (or name a key with signing_key)")
		}
		if _, err := newAssertionSigner(c); err != nil {
			return err
		}
		if aud := c.Value(FieldAssertionAudience); aud != "" && strings.TrimSpace(aud) != aud {
			return fieldErr(FieldAssertionAudience, "must not have surrounding spaces")
		}
	case AuthTLSClientAuth:
		if c.TLSClientCert == "" && c.Settings[FieldTLSKey] == "" {
			return fieldErr(FieldTLSClientCert, "(or tls_key) is required for auth_method tls_client_auth (RFC 8705 authenticates the client by its certificate)")
		}
	default:
		return fieldErr(FieldAuthMethod, "must be client_secret_basic, client_secret_post, private_key_jwt or tls_client_auth")
	}
	return nil
}

func (p oauth2Provider) fetch(ctx context.Context, c *Client, _ *Token) (*Token, error) {
	return c.withRetries(ctx, func(ctx context.Context) (*Token, error) { return p.once(ctx, c) })
}

// once is one token request (with a fresh client assertion), sent again
// once with the bank's DPoP nonce when it asks for one (RFC 9449 8).
func (p oauth2Provider) once(ctx context.Context, c *Client) (*Token, error) {
	tok, err := p.request(ctx, c, true)
	if errors.Is(err, errUseDPoPNonce) {
		return p.request(ctx, c, false)
	}
	return tok, err
}

// request is one token request; nonceRetry lets a use_dpop_nonce answer
// return errUseDPoPNonce rather than the bank's error.
func (p oauth2Provider) request(ctx context.Context, c *Client, nonceRetry bool) (*Token, error) {
	cfg := c.cfg
	tokenURL := cfg.Value(FieldTokenURL)
	form := url.Values{"grant_type": {"client_credentials"}}
	if s := cfg.Value(FieldScope); s != "" {
		form.Set("scope", s)
	}
	if a := cfg.Value(FieldAudience); a != "" {
		form.Set("audience", a)
	}
	x := exchange{step: "token", method: http.MethodPost, url: tokenURL,
		header: headers("Content-Type", "application/x-www-form-urlencoded", "Accept", "application/json")}
	id, secret := cfg.Value(FieldClientID), cfg.Value(FieldClientSecret)
	var carried string // the client assertion, kept out of errors
	switch cfg.Value(FieldAuthMethod) {
	case AuthClientSecretBasic:
		if cfg.Value(FieldBasicEncoding) == BasicEncodingRFC6749 {
			id, secret = url.QueryEscape(id), url.QueryEscape(secret)
		}
		x.basic, x.user, x.pass = true, id, secret
	case AuthClientSecretPost:
		form.Set("client_id", id)
		form.Set("client_secret", secret)
	case AuthPrivateKeyJWT:
		if cfg.keys.Signing != nil {
			assertion, err := keyAssertion(cfg.keys.Signing, id, cfg.Value(FieldAssertionAudience), tokenURL, c.now())
			if err != nil {
				return nil, &UpstreamError{Provider: p.Name(), Step: "token", Message: "cannot sign client assertion with signing_key: " + c.scrub(err.Error())}
			}
			form.Set("client_id", id)
			form.Set("client_assertion_type", ClientAssertionType)
			form.Set("client_assertion", assertion)
			carried = assertion
			break
		}
		signer, err := newAssertionSigner(cfg)
		if err != nil {
			return nil, &UpstreamError{Provider: p.Name(), Step: "token", Message: "cannot sign client assertion: " + err.Error()}
		}
		assertion, err := signer.sign(id, tokenURL, c.now())
		if err != nil {
			return nil, &UpstreamError{Provider: p.Name(), Step: "token", Message: "cannot sign client assertion: " + c.scrub(err.Error())}
		}
		form.Set("client_id", id)
		form.Set("client_assertion_type", ClientAssertionType)
		form.Set("client_assertion", assertion)
		carried = assertion
	case AuthTLSClientAuth:
		form.Set("client_id", id)
	}
	x.body = []byte(form.Encode())
	x, err := c.withDPoP(x)
	if err != nil {
		return nil, &UpstreamError{Provider: p.Name(), Step: "token", Message: "cannot sign DPoP proof with dpop_key: " + c.scrub(err.Error())}
	}
	start := c.now()
	a, err := c.do(ctx, x)
	if err != nil {
		return nil, err
	}
	if c.noteDPoPNonce(a) && nonceRetry {
		return nil, errUseDPoPNonce
	}
	if a.status < 200 || a.status > 299 {
		return nil, redactError(c.rejection("token", a), carried)
	}
	tok, err := standardResponse.parseToken(c, "token", a, start)
	if err != nil {
		return nil, redactError(err, carried)
	}
	return tok, nil
}

// standardResponse reads an RFC 6749 token answer: the profile engine's
// parser with the default token mapping, so oauth2 and the profiles share
// one parser.
var standardResponse = &profileProvider{p: &Profile{Name: "oauth2"}}

// validateEndpointURL checks an absolute https URL (plain http only for
// loopback hosts) without user info or fragment; a query is allowed when
// allowQuery.
func validateEndpointURL(field, raw string, allowQuery bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fieldErr(field, "must be an absolute URL like https://api.bank.example/oauth2/token")
	}
	if u.User != nil || u.Fragment != "" || (!allowQuery && u.RawQuery != "") {
		return fieldErr(field, "must not contain user info or a fragment")
	}
	if why := numericHostReason(u.Hostname()); why != "" {
		return fieldErr(field, "%s", why)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return fieldErr(field, "must use https (plain http is allowed only for loopback hosts)")
		}
	default:
		return fieldErr(field, "scheme must be https")
	}
	if why := unroutableHost(u.Hostname()); why != "" {
		return fieldErr(field, "the host is %s, where no bank lives", why)
	}
	return nil
}
