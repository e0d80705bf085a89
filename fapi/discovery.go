package fapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Well-known suffixes of the two metadata documents.
const (
	WellKnownOAuth = "/.well-known/oauth-authorization-server" // RFC 8414
	WellKnownOIDC  = "/.well-known/openid-configuration"       // OpenID Connect Discovery 1.0
)

// Metadata is what bankauth uses of an authorization server's metadata
// (RFC 8414 section 2, RFC 9126 section 5, RFC 9207 section 3, RFC 9449
// section 5.1, RFC 7636 section 6.2). It is stored as JSON.
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint,omitempty"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint,omitempty"`
	JWKSURI                                    string   `json:"jwks_uri,omitempty"`
	RequirePushedAuthorizationRequests         bool     `json:"require_pushed_authorization_requests,omitempty"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported,omitempty"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`

	// FetchedAt is when the document was fetched (zero for metadata an
	// operator wrote by hand).
	FetchedAt time.Time `json:"fetched_at,omitempty"`
	// Source is the URL the document came from.
	Source string `json:"source,omitempty"`
}

// WellKnownURLs are the metadata URLs of issuer, in the order Discover
// tries them: RFC 8414's, where the well-known segment goes between the
// host and the issuer's path (section 3.1), then OpenID Connect's, where it
// is appended to the issuer.
func WellKnownURLs(issuer string) ([]string, error) {
	u, err := checkIssuer(issuer)
	if err != nil {
		return nil, err
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	oauth := u.Scheme + "://" + u.Host + WellKnownOAuth + path
	oidc := strings.TrimSuffix(issuer, "/") + WellKnownOIDC
	return []string{oauth, oidc}, nil
}

// checkIssuer parses an issuer identifier: an https URL (plain http only
// for loopback hosts, for tests) with no query, fragment or user info
// (RFC 8414 section 2).
func checkIssuer(issuer string) (*url.URL, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || !u.IsAbs() {
		return nil, &Error{Step: StepDiscovery, Msg: "issuer must be an absolute https URL"}
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return nil, &Error{Step: StepDiscovery, Msg: "issuer must not have a query, fragment or user info"}
	}
	if err := checkScheme(u); err != nil {
		return nil, &Error{Step: StepDiscovery, Msg: "issuer " + err.Error()}
	}
	return u, nil
}

// checkScheme allows https anywhere and plain http only to loopback hosts.
func checkScheme(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must use https (plain http only for loopback hosts)")
	}
	return fmt.Errorf("must use https")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Discover fetches issuer's metadata with hc (the caller's egress-controlled
// client): RFC 8414's document, or OpenID Connect's when that one is not
// served (a non-2xx answer). The document's issuer must equal issuer
// exactly, and its endpoints must be absolute https URLs. now becomes
// FetchedAt.
func Discover(ctx context.Context, hc *http.Client, issuer string, now time.Time) (*Metadata, error) {
	urls, err := WellKnownURLs(issuer)
	if err != nil {
		return nil, err
	}
	var statuses []string
	for _, target := range urls {
		a, err := get(ctx, hc, StepDiscovery, target)
		if err != nil {
			return nil, err
		}
		if !ok2xx(a.status) {
			statuses = append(statuses, fmt.Sprintf("%s answered HTTP %d", target, a.status))
			continue
		}
		m, perr := parseMetadata(a.body, issuer)
		if perr != nil {
			perr.Status = a.status
			perr.Msg = target + ": " + perr.Msg
			return nil, perr
		}
		m.FetchedAt, m.Source = now, target
		return m, nil
	}
	return nil, &Error{Step: StepDiscovery, Msg: "no metadata: " + strings.Join(statuses, "; ")}
}

// parseMetadata reads a metadata document and checks it for issuer.
func parseMetadata(body []byte, issuer string) (*Metadata, *Error) {
	var m Metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, &Error{Step: StepDiscovery, Msg: "the document is not valid metadata JSON"}
	}
	m.FetchedAt, m.Source = time.Time{}, ""
	if m.Issuer != issuer {
		return nil, &Error{Step: StepDiscovery, Msg: fmt.Sprintf("the document's issuer %q is not the configured %q", cleanText(m.Issuer, nil), issuer)}
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks that the endpoints are usable: authorization and token
// endpoints present, every endpoint an absolute https URL (plain http only
// for loopback hosts) without fragment or user info.
func (m *Metadata) Validate() error {
	if err := m.validate(); err != nil {
		return err
	}
	return nil
}

func (m *Metadata) validate() *Error {
	if _, err := checkIssuer(m.Issuer); err != nil {
		return err.(*Error)
	}
	for _, ep := range m.endpoints() {
		if ep.url == "" {
			if ep.required {
				return &Error{Step: StepDiscovery, Msg: ep.name + " is missing"}
			}
			continue
		}
		u, err := url.Parse(ep.url)
		if err != nil || !u.IsAbs() || u.Host == "" {
			return &Error{Step: StepDiscovery, Msg: ep.name + " is not an absolute URL"}
		}
		if u.Fragment != "" || u.User != nil {
			return &Error{Step: StepDiscovery, Msg: ep.name + " must not have a fragment or user info"}
		}
		if err := checkScheme(u); err != nil {
			return &Error{Step: StepDiscovery, Msg: ep.name + " " + err.Error()}
		}
	}
	return nil
}

type endpoint struct {
	name     string
	url      string
	required bool
}

// endpoints lists the URLs the client may send requests (and secrets) to.
func (m *Metadata) endpoints() []endpoint {
	return []endpoint{
		{"authorization_endpoint", m.AuthorizationEndpoint, true},
		{"pushed_authorization_request_endpoint", m.PushedAuthorizationRequestEndpoint, false},
		{"token_endpoint", m.TokenEndpoint, true},
		{"revocation_endpoint", m.RevocationEndpoint, false},
		{"jwks_uri", m.JWKSURI, false},
	}
}

// EndpointMove is an endpoint whose host differs between two metadata
// documents. An empty host means the endpoint was absent.
type EndpointMove struct {
	Endpoint string // the metadata name, e.g. token_endpoint
	OldHost  string
	NewHost  string
}

// String describes the move for status and logs.
func (m EndpointMove) String() string {
	show := func(h string) string {
		if h == "" {
			return "(none)"
		}
		return h
	}
	return m.Endpoint + " moved from " + show(m.OldHost) + " to " + show(m.NewHost)
}

// MovedEndpoints compares a refreshed document with the one in use and
// lists the endpoints now on another host (or newly added, or gone): such
// a refresh sends codes, assertions and tokens somewhere new, so the
// plugin applies it only when an operator rewrites the config. Changes of
// path on the same host are not listed.
func MovedEndpoints(old, fresh *Metadata) []EndpointMove {
	var moves []EndpointMove
	o, f := old.endpoints(), fresh.endpoints()
	for i := range o {
		oh, fh := hostOf(o[i].url), hostOf(f[i].url)
		if oh != fh {
			moves = append(moves, EndpointMove{Endpoint: o[i].name, OldHost: oh, NewHost: fh})
		}
	}
	return moves
}

// hostOf is a URL's host:port, lower-cased, with the
// scheme's default port made explicit so "h" and "h:443" compare equal.
func hostOf(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid)"
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return net.JoinHostPort(host, port)
}
