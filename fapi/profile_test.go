package fapi_test

import (
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
)

func TestCheckFAPI2(t *testing.T) {
	meta := &fapi.Metadata{Issuer: "https://as.bank.example", PushedAuthorizationRequestEndpoint: "https://as.bank.example/par",
		DPoPSigningAlgValuesSupported: []string{"ES256", "PS256"}, CodeChallengeMethodsSupported: []string{"S256"},
		TokenEndpointAuthMethodsSupported:          []string{"private_key_jwt", "tls_client_auth"},
		TokenEndpointAuthSigningAlgValuesSupported: []string{"PS256", "ES256"}}
	noPAR := *meta
	noPAR.PushedAuthorizationRequestEndpoint = ""
	plainPKCE := *meta
	plainPKCE.CodeChallengeMethodsSupported = []string{"plain"}
	good := fapi.ClientConfig{AuthMethod: fapi.AuthPrivateKeyJWT, SigningAlg: "PS256", DPoPAlg: "ES256"}
	for _, c := range []struct {
		name string
		meta *fapi.Metadata
		cfg  fapi.ClientConfig
		rule string
	}{
		{"private_key_jwt with DPoP", meta, good, ""},
		{"mTLS bound", meta, fapi.ClientConfig{AuthMethod: fapi.AuthTLSClientAuth, MTLS: true}, ""},
		{"private_key_jwt with mTLS binding", meta, fapi.ClientConfig{AuthMethod: fapi.AuthPrivateKeyJWT, SigningAlg: "ES256", MTLS: true}, ""},
		{"AS without PAR", &noPAR, good, fapi.RulePAR},
		{"no metadata", nil, good, fapi.RulePAR},
		{"client secret", meta, fapi.ClientConfig{AuthMethod: fapi.AuthClientSecretBasic, DPoPAlg: "ES256"}, fapi.RuleClientAuth},
		{"client_secret_jwt", meta, fapi.ClientConfig{AuthMethod: fapi.AuthClientSecretJWT, DPoPAlg: "ES256"}, fapi.RuleClientAuth},
		{"tls_client_auth without certificate", meta, fapi.ClientConfig{AuthMethod: fapi.AuthTLSClientAuth, DPoPAlg: "ES256"}, fapi.RuleClientAuth},
		{"no sender constraint", meta, fapi.ClientConfig{AuthMethod: fapi.AuthPrivateKeyJWT, SigningAlg: "PS256"}, fapi.RuleSenderConstrain},
		{"RS256 assertion", meta, fapi.ClientConfig{AuthMethod: fapi.AuthPrivateKeyJWT, SigningAlg: "RS256", DPoPAlg: "ES256"}, fapi.RuleAlgorithm},
		{"ES384 DPoP", meta, fapi.ClientConfig{AuthMethod: fapi.AuthPrivateKeyJWT, SigningAlg: "PS256", DPoPAlg: "ES384"}, fapi.RuleAlgorithm},
		{"DPoP alg the AS does not take", meta, fapi.ClientConfig{AuthMethod: fapi.AuthPrivateKeyJWT, SigningAlg: "PS256", DPoPAlg: "EdDSA"}, fapi.RuleAlgorithm},
		{"no S256", &plainPKCE, good, fapi.RulePKCE},
	} {
		err := fapi.CheckFAPI2(c.meta, c.cfg)
		var pe *fapi.ProfileError
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.rule != "" && (!asError(err, &pe) || pe.Rule != c.rule):
			t.Errorf("%s: %v, want rule %s", c.name, err, c.rule)
		}
	}
}
