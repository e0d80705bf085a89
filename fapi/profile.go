package fapi

import (
	"slices"
	"strings"
)

// Client authentication methods (token_endpoint_auth_method values).
const (
	AuthPrivateKeyJWT           = "private_key_jwt"
	AuthTLSClientAuth           = "tls_client_auth"
	AuthSelfSignedTLSClientAuth = "self_signed_tls_client_auth"
	AuthClientSecretBasic       = "client_secret_basic"
	AuthClientSecretPost        = "client_secret_post"
	AuthClientSecretJWT         = "client_secret_jwt"
)

// FAPI2Algs are the JWS algorithms the FAPI 2.0 Security Profile (section
// 5.4) allows.
var FAPI2Algs = []string{"PS256", "ES256", "EdDSA"}

// Rules CheckFAPI2 names.
const (
	RulePAR             = "par"               // the AS must offer pushed authorization requests
	RuleClientAuth      = "client_auth"       // private_key_jwt or mutual TLS, never a shared secret
	RuleSenderConstrain = "sender_constraint" // DPoP or mTLS-bound tokens
	RuleAlgorithm       = "algorithm"         // PS256, ES256 or EdDSA
	RulePKCE            = "pkce"              // the AS must offer S256
	RuleAuthMethodOffer = "auth_method"       // the AS must offer the client's method
)

// ClientConfig is what the profile check needs of a client configuration.
type ClientConfig struct {
	AuthMethod string // token_endpoint_auth_method
	// SigningAlg is the client assertion's algorithm (private_key_jwt).
	SigningAlg string
	// DPoPAlg is the DPoP key's algorithm; "" when the client has no DPoP key.
	DPoPAlg string
	// MTLS is whether the client has a client certificate (tls_key or
	// tls_client_cert), which binds tokens by RFC 8705.
	MTLS bool
}

// ProfileError is a client configuration the FAPI 2.0 Security Profile
// refuses: Rule names the rule, Msg says how the configuration breaks it.
type ProfileError struct {
	Rule string
	Msg  string
}

// Error implements error.
func (e *ProfileError) Error() string { return "FAPI 2.0 rule " + e.Rule + ": " + e.Msg }

// CheckFAPI2 checks a client configuration against the FAPI 2.0 Security
// Profile's client rules, given the AS's metadata, and returns the first
// rule broken as a *ProfileError: a PAR endpoint (5.3.2.2), client
// authentication by private_key_jwt or mutual TLS (5.3.2.1), sender-
// constrained tokens by DPoP or mTLS (5.3.2.1), PS256, ES256 or EdDSA for
// every signature the client makes (5.4), and what the AS advertises
// (S256, the auth method, the DPoP algorithm) when it advertises it.
func CheckFAPI2(meta *Metadata, c ClientConfig) error {
	if meta == nil || meta.PushedAuthorizationRequestEndpoint == "" {
		return &ProfileError{Rule: RulePAR, Msg: "the authorization server has no pushed_authorization_request_endpoint"}
	}
	switch c.AuthMethod {
	case AuthPrivateKeyJWT:
		if !slices.Contains(FAPI2Algs, c.SigningAlg) {
			return &ProfileError{Rule: RuleAlgorithm, Msg: "client assertion algorithm " + quoteAlg(c.SigningAlg) + " is not one of " + strings.Join(FAPI2Algs, ", ")}
		}
	case AuthTLSClientAuth, AuthSelfSignedTLSClientAuth:
		if !c.MTLS {
			return &ProfileError{Rule: RuleClientAuth, Msg: c.AuthMethod + " needs a client certificate"}
		}
	case AuthClientSecretBasic, AuthClientSecretPost, AuthClientSecretJWT:
		return &ProfileError{Rule: RuleClientAuth, Msg: c.AuthMethod + " is a shared-secret method; use private_key_jwt or tls_client_auth"}
	default:
		return &ProfileError{Rule: RuleClientAuth, Msg: "auth method " + quoteAlg(c.AuthMethod) + " is not private_key_jwt, tls_client_auth or self_signed_tls_client_auth"}
	}
	if c.DPoPAlg == "" && !c.MTLS {
		return &ProfileError{Rule: RuleSenderConstrain, Msg: "neither a DPoP key nor a client certificate binds the tokens"}
	}
	if c.DPoPAlg != "" {
		if !slices.Contains(FAPI2Algs, c.DPoPAlg) {
			return &ProfileError{Rule: RuleAlgorithm, Msg: "DPoP algorithm " + quoteAlg(c.DPoPAlg) + " is not one of " + strings.Join(FAPI2Algs, ", ")}
		}
		if s := meta.DPoPSigningAlgValuesSupported; len(s) > 0 && !slices.Contains(s, c.DPoPAlg) {
			return &ProfileError{Rule: RuleAlgorithm, Msg: "the authorization server does not accept DPoP algorithm " + c.DPoPAlg}
		}
	}
	if s := meta.CodeChallengeMethodsSupported; len(s) > 0 && !slices.Contains(s, "S256") {
		return &ProfileError{Rule: RulePKCE, Msg: "the authorization server does not offer code_challenge_method S256"}
	}
	if s := meta.TokenEndpointAuthMethodsSupported; len(s) > 0 && !slices.Contains(s, c.AuthMethod) {
		return &ProfileError{Rule: RuleAuthMethodOffer, Msg: "the authorization server does not offer " + c.AuthMethod}
	}
	if c.AuthMethod == AuthPrivateKeyJWT {
		if s := meta.TokenEndpointAuthSigningAlgValuesSupported; len(s) > 0 && !slices.Contains(s, c.SigningAlg) {
			return &ProfileError{Rule: RuleAlgorithm, Msg: "the authorization server does not accept client assertions signed " + c.SigningAlg}
		}
	}
	return nil
}

func quoteAlg(s string) string {
	if s == "" {
		return "(none)"
	}
	return `"` + cleanText(s, nil) + `"`
}
