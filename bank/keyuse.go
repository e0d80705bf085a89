package bank

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Purposes a kept key may be used for. The key's owner (whoever may write
// key/<name>) chooses them; a config writer can only use them.
const (
	PurposeClientAuth     = "client_auth"     // signing_key: RFC 7523 client assertions
	PurposeTLS            = "tls"             // tls_key: mutual TLS
	PurposeDPoP           = "dpop"            // dpop_key and dpop/<config>: DPoP proofs
	PurposeRequestSigning = "request_signing" // sign/<key>
)

// Purposes lists the purposes in the order reads show them.
var Purposes = []string{PurposeClientAuth, PurposeTLS, PurposeDPoP, PurposeRequestSigning}

// Fields of key/<name> that hold a key's purposes and pins.
const (
	FieldPurpose          = "purpose"
	FieldAllowedEndpoints = "allowed_endpoints"
	FieldAllowedAudiences = "allowed_audiences"
)

// KeyUse is what a kept key's owner allows it for: its purposes and, for
// client assertions, where they may be sent (URL prefixes of the token
// endpoint) and for whom (exact aud values).
type KeyUse struct {
	Name             string
	Purposes         []string
	AllowedEndpoints []string
	AllowedAudiences []string
}

// Has reports whether the key may be used for purpose.
func (u KeyUse) Has(purpose string) bool { return slices.Contains(u.Purposes, purpose) }

// KeyUseError says why a key may not be used as asked. It names the key
// and the key field that decides, never a value the config sent.
type KeyUseError struct {
	Key, Field, Msg string
}

func (e *KeyUseError) Error() string { return fmt.Sprintf("key %q %s", e.Key, e.Msg) }

// Require refuses a purpose the key lacks.
func (u KeyUse) Require(purpose string) error {
	if u.Has(purpose) {
		return nil
	}
	return &KeyUseError{Key: u.Name, Field: FieldPurpose, Msg: fmt.Sprintf(
		"lacks purpose %s (only a writer of key/%s can add it)", purpose, u.Name)}
}

// PermitAssertion refuses a client assertion for audience sent to
// endpoint unless the key has purpose client_auth, endpoint is under one
// of its allowed_endpoints and audience is one of its allowed_audiences.
// It runs when a config is written and again for every assertion signed.
func (u KeyUse) PermitAssertion(endpoint, audience string) error {
	if err := u.Require(PurposeClientAuth); err != nil {
		return err
	}
	for _, f := range []struct {
		field string
		vals  []string
	}{{FieldAllowedEndpoints, u.AllowedEndpoints}, {FieldAllowedAudiences, u.AllowedAudiences}} {
		if len(f.vals) == 0 {
			return &KeyUseError{Key: u.Name, Field: f.field, Msg: fmt.Sprintf(
				"has no %s (a writer of key/%s must set allowed_endpoints and allowed_audiences before a config may use it for signing_key)", f.field, u.Name)}
		}
	}
	if !slices.ContainsFunc(u.AllowedEndpoints, func(p string) bool { return EndpointUnder(p, endpoint) }) {
		return &KeyUseError{Key: u.Name, Field: FieldAllowedEndpoints, Msg: fmt.Sprintf(
			"does not allow its client assertions to be sent to this token endpoint: it is under none of the key's allowed_endpoints (a writer of key/%s decides them)", u.Name)}
	}
	if !slices.Contains(u.AllowedAudiences, audience) {
		return &KeyUseError{Key: u.Name, Field: FieldAllowedAudiences, Msg: fmt.Sprintf(
			"does not allow this client assertion audience: it is none of the key's allowed_audiences (a writer of key/%s decides them)", u.Name)}
	}
	return nil
}

// EndpointUnder reports whether endpoint is under the URL prefix allowed:
// the same scheme and host:port (host names compared without case or a
// trailing dot, default ports made explicit), and a path that is the
// allowed path or continues it after a "/". An endpoint whose path has a
// dot segment ("." or "..", escaped or not) is under nothing: a server
// may resolve it elsewhere.
func EndpointUnder(allowed, endpoint string) bool {
	a, err := url.Parse(allowed)
	if err != nil || a.Host == "" {
		return false
	}
	e, err := url.Parse(endpoint)
	if err != nil || e.Host == "" || e.User != nil || e.Opaque != "" {
		return false
	}
	if !strings.EqualFold(a.Scheme, e.Scheme) || hostPort(a) != hostPort(e) {
		return false
	}
	ap, ep := a.EscapedPath(), e.EscapedPath()
	if ap == "" {
		ap = "/"
	}
	if ep == "" {
		ep = "/"
	}
	if hasDotSegment(ep) || hasDotSegment(ap) {
		return false
	}
	if ap == ep {
		return true
	}
	if !strings.HasSuffix(ap, "/") {
		ap += "/"
	}
	return strings.HasPrefix(ep, ap)
}

// hostPort is a URL's lower-case host (no trailing dot) and port, the
// scheme's default port when none is given.
func hostPort(u *url.URL) string {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return net.JoinHostPort(host, port)
}

// hasDotSegment reports a "." or ".." path segment, percent-encoded or not.
func hasDotSegment(escapedPath string) bool {
	for _, seg := range strings.Split(escapedPath, "/") {
		if s, err := url.PathUnescape(seg); err != nil || s == "." || s == ".." {
			return true
		}
	}
	return false
}

// ValidateAllowedEndpoint checks one allowed_endpoints entry: an absolute
// https URL (plain http only for loopback hosts) without user info, query,
// fragment or dot segments. The error never quotes it.
func ValidateAllowedEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || hasDotSegment(u.EscapedPath()) {
		return fieldErr(FieldAllowedEndpoints, "each must be an absolute URL prefix like https://as.bank.example/ (no user info, query, fragment or dot segments)")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return fieldErr(FieldAllowedEndpoints, "each must use https (plain http is allowed only for loopback hosts)")
		}
	default:
		return fieldErr(FieldAllowedEndpoints, "each must use https")
	}
	if unroutableHost(u.Hostname()) != "" {
		return fieldErr(FieldAllowedEndpoints, "each must name a host a bank can live at (not link-local, unspecified or multicast)")
	}
	return nil
}

// AssertionTarget is where a config's client assertions go: the endpoint
// they are sent to and their aud.
type AssertionTarget struct {
	Endpoint, Audience string
}

// AssertionTargets lists where the config's client assertions go, as far
// as that is known before a fetch: oauth2's token_url and audience; for a
// profile, each step with a client_assertion whose URL and audience can be
// rendered from the config alone (one that needs an earlier step's answer
// is checked when the assertion is signed). The config's provider must be
// attached.
func (c *Config) AssertionTargets() []AssertionTarget {
	p, ok := c.Lookup()
	if !ok {
		return nil
	}
	switch pp := p.(type) {
	case oauth2Provider:
		if c.IsAuthorizationCode() {
			return c.authCodeTargets() // authcode.go
		}
		tokenURL := c.Value(FieldTokenURL)
		aud := c.Value(FieldAssertionAudience)
		if aud == "" {
			aud = tokenURL
		}
		return []AssertionTarget{{Endpoint: tokenURL, Audience: aud}}
	case *profileProvider:
		return pp.assertionTargets(c)
	}
	return nil
}

func (pp *profileProvider) assertionTargets(c *Config) []AssertionTarget {
	var out []AssertionTarget
	base := strings.TrimRight(c.EffectiveBaseURL(), "/")
	for _, steps := range [][]Step{pp.p.Steps, refreshSteps(pp.p)} {
		for _, s := range steps {
			if s.Assertion == nil {
				continue
			}
			rc := &renderContext{cfg: c, steps: map[string]map[string]string{}}
			var target string
			var err error
			if s.URL != "" {
				target, err = rc.renderStepURL(s.URL)
			} else {
				target, err = rc.render(s.Path, url.PathEscape)
				target = base + target
			}
			if err != nil {
				continue
			}
			target, _, _ = strings.Cut(target, "?")
			aud, err := rc.render(s.Assertion.Audience, nil)
			if err != nil {
				continue
			}
			if aud == "" {
				aud = target
			}
			out = append(out, AssertionTarget{Endpoint: target, Audience: aud})
		}
	}
	return out
}
