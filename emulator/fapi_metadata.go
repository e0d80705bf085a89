package emulator

import (
	"net/http"
	"net/url"
	"strings"
)

// fapiBase is the emulator's base URL as the request reached it (or
// FAPIOptions.PublicURL).
func (s *Server) fapiBase(r *http.Request) string {
	if s.fapi.opts.PublicURL != "" {
		return strings.TrimSuffix(s.fapi.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// fapiIssuer is the issuer identifier for a request.
func (s *Server) fapiIssuer(r *http.Request) string { return s.fapiBase(r) + FAPIPrefix }

// fapiMetadata is the server's metadata (RFC 8414 section 2 with RFC 9126
// section 5, RFC 9207 section 3, RFC 9449 section 5.1, OpenID Connect Discovery section 3).
type fapiMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
	RequirePushedAuthorizationRequests         bool     `json:"require_pushed_authorization_requests"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	UserInfoEndpoint                           string   `json:"userinfo_endpoint"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	ScopesSupported                            []string `json:"scopes_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValues     []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
}

// fapiDiscovery serves both metadata documents (GET): the same content,
// whose issuer is the issuer of the request's base URL.
func (s *Server) fapiDiscovery(w http.ResponseWriter, r *http.Request, _ []byte) {
	iss := s.fapiIssuer(r)
	s.fapi.mu.Lock()
	scopes := append([]string(nil), s.fapi.opts.Scopes...)
	s.fapi.mu.Unlock()
	algs := fapiAlgNames()
	writeJSON(w, http.StatusOK, fapiMetadata{
		Issuer:                                     iss,
		AuthorizationEndpoint:                      iss + strings.TrimPrefix(FAPIAuthorizePath, FAPIPrefix),
		PushedAuthorizationRequestEndpoint:         iss + strings.TrimPrefix(FAPIPARPath, FAPIPrefix),
		RequirePushedAuthorizationRequests:         true,
		TokenEndpoint:                              iss + strings.TrimPrefix(FAPITokenPath, FAPIPrefix),
		RevocationEndpoint:                         iss + strings.TrimPrefix(FAPIRevokePath, FAPIPrefix),
		JWKSURI:                                    iss + strings.TrimPrefix(FAPIJWKSPath, FAPIPrefix),
		UserInfoEndpoint:                           iss + strings.TrimPrefix(FAPIUserInfoPath, FAPIPrefix),
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        []string{"authorization_code", "refresh_token"},
		SubjectTypesSupported:                      []string{"public"},
		ScopesSupported:                            scopes,
		AuthorizationResponseIssParameterSupported: true,
		DPoPSigningAlgValuesSupported:              algs,
		CodeChallengeMethodsSupported:              []string{"S256"},
		TokenEndpointAuthMethodsSupported:          []string{"private_key_jwt"},
		TokenEndpointAuthSigningAlgValuesSupported: algs,
		RevocationEndpointAuthMethodsSupported:     []string{"private_key_jwt"},
		RevocationEndpointAuthSigningAlgValues:     algs,
		IDTokenSigningAlgValuesSupported:           []string{"ES256"},
		ClaimsParameterSupported:                   true,
	})
}

// sameURL compares two http(s) URLs by scheme, host (case-insensitive,
// default port implied) and path, ignoring query and fragment (RFC 9449
// section 4.3 point 9, with RFC 3986 section 6.2 normalization).
func sameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	norm := func(u *url.URL) string {
		scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			port = ""
		}
		if port != "" {
			host += ":" + port
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		return scheme + "://" + host + path
	}
	return norm(ua) == norm(ub)
}
