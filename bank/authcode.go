package bank

import (
	"net/http"
	"strings"
)

// oauth2 fields of a connection whose tokens belong to user consents
// (grant_type=authorization_code, issue 19). The endpoint fields are
// filled from the issuer's metadata when the config is written, unless the
// operator sets them by hand.
const (
	FieldGrantType        = "grant_type"
	FieldIssuer           = "issuer"
	FieldRedirectURIs     = "redirect_uris"
	FieldFAPI             = "fapi"
	FieldAuthorizationURL = "authorization_url"
	FieldPARURL           = "par_url"
	FieldRevocationURL    = "revocation_url"
	FieldJWKSURI          = "jwks_uri"

	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
	FAPI2                  = "2.0"
)

// DiscoveredFields are the endpoint fields an authorization_code config
// takes from its issuer's metadata or an operator sets by hand, in the
// order reads show them (token_url
// is among them: it is the token endpoint of both grants).
var DiscoveredFields = []string{FieldAuthorizationURL, FieldPARURL, FieldTokenURL, FieldRevocationURL, FieldJWKSURI}

// authCodeFields are oauth2's fields for the authorization code grant.
var authCodeFields = []Field{
	{Name: FieldGrantType, Default: GrantClientCredentials,
		Description: "oauth2: client_credentials (default: token/<name> fetches the connection's own token) or authorization_code (tokens belong to user consents at consent/<name>/<id>, read at token/<name>/<id>)."},
	{Name: FieldIssuer, Description: "oauth2 authorization_code: the authorization server's issuer identifier; its metadata (RFC 8414, then OpenID Connect discovery) is fetched when the config is written and must name this issuer exactly."},
	{Name: FieldRedirectURIs, Description: "oauth2 authorization_code: comma-separated redirect URIs registered for the client; consents use the first unless they name another."},
	{Name: FieldFAPI, Description: "oauth2 authorization_code: 2.0 refuses a config that breaks the FAPI 2.0 Security Profile (no PAR, a shared-secret auth_method, no sender constraint, an algorithm other than PS256, ES256 or EdDSA)."},
	{Name: FieldAuthorizationURL, Description: "oauth2 authorization_code: the authorization endpoint, from the issuer's metadata, or set by hand (then kept through metadata refreshes; an empty value returns it to discovery). With authorization_url, token_url (par_url too with fapi=2.0; jwks_uri with openid) set by hand, no metadata is fetched."},
	{Name: FieldPARURL, Description: "oauth2 authorization_code: the pushed authorization request endpoint, from the issuer's metadata, or set by hand (then kept through metadata refreshes; an empty value returns it to discovery). With authorization_url, token_url (par_url too with fapi=2.0; jwks_uri with openid) set by hand, no metadata is fetched."},
	{Name: FieldRevocationURL, Description: "oauth2 authorization_code: the revocation endpoint, from the issuer's metadata, or set by hand (then kept through metadata refreshes; an empty value returns it to discovery). With authorization_url, token_url (par_url too with fapi=2.0; jwks_uri with openid) set by hand, no metadata is fetched."},
	{Name: FieldJWKSURI, Description: "oauth2 authorization_code: the authorization server's JWK Set, from the issuer's metadata, or set by hand (then kept through metadata refreshes; an empty value returns it to discovery). With authorization_url, token_url (par_url too with fapi=2.0; jwks_uri with openid) set by hand, no metadata is fetched."},
}

// AuthCodeFieldNames are the names of oauth2's authorization code fields
// (grant_type included), which a client credentials config's read leaves out.
func AuthCodeFieldNames() map[string]bool {
	out := make(map[string]bool, len(authCodeFields))
	for _, f := range authCodeFields {
		out[f.Name] = true
	}
	return out
}

// IsAuthorizationCode reports whether the config's tokens belong to user
// consents (oauth2 with grant_type=authorization_code).
func (c *Config) IsAuthorizationCode() bool {
	return c != nil && c.Provider == "oauth2" && c.Settings[FieldGrantType] == GrantAuthorizationCode
}

// RedirectURIs are the config's redirect_uris, in order.
func (c *Config) RedirectURIs() []string {
	var out []string
	for _, u := range strings.Split(c.Settings[FieldRedirectURIs], ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// AssertionAudienceOrIssuer is the aud of an authorization_code config's
// client assertions: assertion_audience, or the issuer (FAPI 2.0 section
// 5.3.2.1).
func (c *Config) AssertionAudienceOrIssuer() string {
	if aud := c.Value(FieldAssertionAudience); aud != "" {
		return aud
	}
	return c.Settings[FieldIssuer]
}

// validateAuthCode checks oauth2's grant_type and, for the authorization
// code grant, its own fields. The endpoints were filled from the issuer's
// metadata by the plugin before this runs.
func (c *Config) validateAuthCode() error {
	switch c.Value(FieldGrantType) {
	case GrantClientCredentials:
		for _, f := range authCodeFields[1:] {
			if c.Settings[f.Name] != "" {
				return fieldErr(f.Name, "applies only to grant_type authorization_code")
			}
		}
		return nil
	case GrantAuthorizationCode:
	default:
		return fieldErr(FieldGrantType, "must be client_credentials or authorization_code")
	}
	if c.Settings[FieldIssuer] == "" {
		return fieldErr(FieldIssuer, "is required for grant_type authorization_code")
	}
	uris := c.RedirectURIs()
	if len(uris) == 0 {
		return fieldErr(FieldRedirectURIs, "is required for grant_type authorization_code")
	}
	for _, u := range uris {
		if err := validateEndpointURL(FieldRedirectURIs, u, true); err != nil {
			return fieldErr(FieldRedirectURIs, "each must be an absolute https URL without fragment (plain http only for loopback hosts)")
		}
	}
	if f := c.Settings[FieldFAPI]; f != "" && f != FAPI2 {
		return fieldErr(FieldFAPI, "must be 2.0 or empty")
	}
	switch c.Value(FieldAuthMethod) {
	case AuthPrivateKeyJWT:
		if c.Settings[FieldSigningKey] == "" {
			return fieldErr(FieldSigningKey, "is required for grant_type authorization_code with auth_method private_key_jwt (a key kept in Vault, purpose client_auth)")
		}
	case AuthTLSClientAuth:
	default:
		return fieldErr(FieldAuthMethod, "must be private_key_jwt or tls_client_auth for grant_type authorization_code")
	}
	if c.Settings[FieldAudience] != "" {
		return fieldErr(FieldAudience, "does not apply to grant_type authorization_code")
	}
	for _, f := range []string{FieldAuthorizationURL, FieldPARURL, FieldRevocationURL, FieldJWKSURI} {
		if v := c.Settings[f]; v != "" {
			if err := validateEndpointURL(f, v, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// authCodeTargets are where an authorization_code config's client
// assertions go: the PAR, token and revocation endpoints, all addressed to
// the issuer (or assertion_audience).
func (c *Config) authCodeTargets() []AssertionTarget {
	aud := c.AssertionAudienceOrIssuer()
	var out []AssertionTarget
	for _, f := range []string{FieldPARURL, FieldTokenURL, FieldRevocationURL} {
		if v := c.Settings[f]; v != "" {
			out = append(out, AssertionTarget{Endpoint: v, Audience: aud})
		}
	}
	return out
}

// HTTPClient is an *http.Client for cfg's authorization server (consents:
// discovery, PAR, token, revocation, JWK Set) that follows the options'
// egress policy, trusts cfg's CA bundle, presents its client certificate
// (tls_key or tls_client_cert), never follows a redirect, and gives up
// after cfg's timeout. The shared transport it holds is released by
// calling the returned function once.
func HTTPClient(cfg *Config, opts ...Option) (*http.Client, func(), error) {
	c := &Client{egress: strictEgress}
	for _, o := range opts {
		o(c)
	}
	t, err := acquireTransport(cfg, c.egress)
	if err != nil {
		return nil, nil, err
	}
	hc := &http.Client{
		Transport:     t,
		Timeout:       cfg.EffectiveTimeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return hc, func() { releaseTransport(cfg, c.egress) }, nil
}
