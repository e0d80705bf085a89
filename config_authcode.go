package bankauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/logical"
)

// A config with grant_type=authorization_code (issue 19) is a FAPI 2.0
// client whose tokens belong to user consents. Writing it discovers the
// issuer's metadata through the mount's egress policy and stores it with
// the config; fapi=2.0 checks the config against the profile.

// discoverAuthServer fills an authorization_code config's endpoints from
// its issuer's metadata and, with fapi=2.0, checks the FAPI 2.0 profile.
// Endpoints set by hand (config_authcode_meta.go) take the place of the
// discovered ones; with every endpoint the config needs set by hand, the
// issuer is not asked at all. It returns a 400 for bad input, a 502 when
// the issuer cannot be discovered, nil when the config may go on to be
// validated (pins and egress apply to every endpoint alike).
func (b *backend) discoverAuthServer(ctx context.Context, s logical.Storage, name string, cfg *bank.Config, sent map[string]bool) (*logical.Response, error) {
	if !cfg.IsAuthorizationCode() {
		return nil, nil
	}
	issuer := cfg.Settings[bank.FieldIssuer]
	if issuer == "" {
		return logical.ErrorResponse("invalid %s: is required for grant_type authorization_code", bank.FieldIssuer), nil
	}
	if _, err := fapi.WellKnownURLs(issuer); err != nil {
		return logical.ErrorResponse("invalid %s: must be an absolute https URL without query, fragment or user info (plain http only for loopback hosts)", bank.FieldIssuer), nil
	}
	prev, err := readStoredConfig(ctx, s, name)
	if err != nil {
		return nil, err
	}
	byHand := endpointsByHand(prev, cfg, sent)
	for _, f := range bank.DiscoveredFields {
		if !byHand[f] {
			delete(cfg.Settings, f) // discovered again below
		} else if err := checkHandEndpoint(f, cfg.Settings[f]); err != nil {
			return configError(err)
		}
	}
	st := &authServerState{ByHand: sortedFields(byHand)}
	if allByHand(cfg, byHand) {
		st.Metadata = *metadataByHand(cfg)
	} else {
		hc, release, err := b.authServerHTTP(ctx, s, cfg)
		if err != nil {
			return configError(err)
		}
		defer release()
		meta, err := fapi.Discover(ctx, hc, issuer, b.clock.Now())
		if err != nil {
			return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("config %s: issuer %s: %s (a bank that publishes no metadata: set %s by hand)",
				name, issuer, err, strings.Join(handRequired(cfg), ", ")))
		}
		overrideByHand(meta, cfg, st.ByHand)
		st.Metadata, st.CheckedAt = *meta, meta.FetchedAt
	}
	meta := &st.Metadata
	// PAR is used whenever the server offers it; without it the request goes
	// through the browser (fapi.FrontChannelURL), which FAPI 2.0 refuses
	// (CheckFAPI2's rule par).
	if cfg.Settings[bank.FieldFAPI] == bank.FAPI2 {
		cc, err := fapiClientConfig(ctx, s, cfg)
		if err != nil {
			return nil, err
		}
		if err := fapi.CheckFAPI2(meta, cc); err != nil {
			return logical.ErrorResponse("invalid %s: %s", bank.FieldFAPI, err), nil
		}
	}
	applyEndpoints(cfg, meta)
	return nil, st.store(cfg)
}

// authServerHTTP is the HTTP client for cfg's authorization server: the
// mount's egress policy, cfg's CA bundle and client certificate.
func (b *backend) authServerHTTP(ctx context.Context, s logical.Storage, cfg *bank.Config) (*http.Client, func(), error) {
	opt, err := b.egressFor(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	return bank.HTTPClient(cfg, opt)
}

// fapiClientConfig is what CheckFAPI2 needs of a config: its auth method
// and the algorithms of the keys it names.
func fapiClientConfig(ctx context.Context, s logical.Storage, cfg *bank.Config) (fapi.ClientConfig, error) {
	cc := fapi.ClientConfig{AuthMethod: cfg.Value(bank.FieldAuthMethod),
		MTLS: cfg.TLSClientCert != "" || cfg.Settings[bank.FieldTLSKey] != ""}
	for field, dst := range map[string]*string{bank.FieldSigningKey: &cc.SigningAlg, bank.FieldDPoPKey: &cc.DPoPAlg} {
		name := cfg.Settings[field]
		if name == "" {
			continue
		}
		k, err := readKey(ctx, s, name)
		if err != nil {
			return cc, err
		}
		if k != nil {
			*dst = keyring.DefaultAlg(k.Type)
		}
	}
	return cc, nil
}

// authServerMetadata is the stored metadata of an authorization_code
// config: the endpoints in use.
func authServerMetadata(cfg *bank.Config) (*fapi.Metadata, error) {
	st, err := loadAuthServer(cfg)
	if err != nil {
		return nil, err
	}
	return &st.Metadata, nil
}

// consentConfigError is what the broker gets for a config with
// grant_type authorization_code (store.Config): its tokens belong to
// consents, so token/<name> answers 400 naming token/<name>/<consent>.
type consentConfigError string

func (e consentConfigError) Error() string {
	return fmt.Sprintf("config %s has grant_type authorization_code: its tokens belong to consents; read token/%s/<consent>", string(e), string(e))
}
