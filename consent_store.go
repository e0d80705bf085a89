package bankauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// consentPrefix holds each user consent of an authorization_code config:
// consent/<config>/<id> is a consentRecord (seal-wrapped, backend.go).
const consentPrefix = "consent/"

// Consent states, as reads show them.
const (
	consentPending    = "pending"
	consentAuthorized = "authorized"
	consentDenied     = "denied"
	consentExpired    = "expired"
	consentRevoked    = "revoked"
)

// consentDefaultLifetime is the life assumed for an access token whose
// answer had no expires_in.
const consentDefaultLifetime = 5 * time.Minute

// consentRecord is one consent as stored. Attempt (state, nonce, PKCE
// verifier) and Token (access and refresh tokens) are secrets: both print
// redacted, and no read, error or log shows them. The ID token is
// validated at the callback and never stored.
type consentRecord struct {
	State string `json:"state"`
	// Attempt is the authorization attempt awaiting its callback; nil once
	// a callback consumed it.
	Attempt *fapi.Attempt `json:"attempt,omitempty"`
	// Token is the consent's current tokens; nil until authorized, and
	// again once revoked.
	Token                *fapi.Token     `json:"token,omitempty"`
	Sub                  string          `json:"sub,omitempty"`
	Scope                string          `json:"scope,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	CreatedAt            time.Time       `json:"created_at"`
	AuthorizedAt         time.Time       `json:"authorized_at,omitzero"`
	ConsentExpiresAt     time.Time       `json:"consent_expires_at,omitzero"`
	LastRefreshAt        time.Time       `json:"last_refresh_at,omitzero"`
	LastError            string          `json:"last_error,omitempty"`
}

// consentKey is the storage key of consent id of config.
func consentKey(config, id string) string { return consentPrefix + config + "/" + id }

func readConsent(ctx context.Context, s logical.Storage, config, id string) (*consentRecord, error) {
	se, err := s.Get(ctx, consentKey(config, id))
	if err != nil || se == nil {
		return nil, err
	}
	var rec consentRecord
	if err := se.DecodeJSON(&rec); err != nil {
		return nil, fmt.Errorf("decoding consent %s/%s: %w", config, id, err)
	}
	return &rec, nil
}

func putConsent(ctx context.Context, s logical.Storage, config, id string, rec *consentRecord) error {
	se, err := logical.StorageEntryJSON(consentKey(config, id), rec)
	if err != nil {
		return err
	}
	return s.Put(ctx, se)
}

// shownState is the state a read shows: a pending consent whose attempt
// ran out is expired.
func (r *consentRecord) shownState(now time.Time) string {
	if r.State == consentPending && r.Token == nil && (r.Attempt == nil || !now.Before(r.Attempt.ExpiresAt)) && r.LastError == "" {
		return consentExpired
	}
	return r.State
}

// consentData is what reads and callbacks answer: the consent's status,
// never a code, verifier, state value, nonce, ID token or token.
func (r *consentRecord) consentData(now time.Time) map[string]any {
	data := map[string]any{
		"state":              r.shownState(now),
		"sub":                r.Sub,
		"scope":              r.Scope,
		"created_at":         rfc3339(r.CreatedAt),
		"authorized_at":      rfc3339(r.AuthorizedAt),
		"consent_expires_at": rfc3339(r.ConsentExpiresAt),
		"last_refresh_at":    rfc3339(r.LastRefreshAt),
		"last_error":         r.LastError,
	}
	if len(r.AuthorizationDetails) > 0 {
		var ad any
		if json.Unmarshal(r.AuthorizationDetails, &ad) == nil {
			data["authorization_details"] = ad
		}
	}
	if r.Attempt != nil && now.Before(r.Attempt.ExpiresAt) {
		data["attempt_expires_at"] = rfc3339(r.Attempt.ExpiresAt)
	}
	return data
}

// consentLocks order everything that changes one consent's record (a new
// attempt, its callback, a refresh, an attempt's expiry, a delete) on this
// node: never two refresh grants for one consent at once. Readers of a
// stale token wait for the one refresh in package broker, which holds its
// own per-consent lock around consentSource.RenewConsent (which takes this
// one).
type consentLocks struct {
	once  sync.Once
	locks []*locksutil.LockEntry
}

func (l *consentLocks) lock(config, id string) func() {
	l.once.Do(func() { l.locks = locksutil.CreateLocks() })
	e := locksutil.LockForKey(l.locks, config+"/"+id)
	e.Lock()
	return e.Unlock
}

// consentClient is a config's FAPI client for one request.
type consentClient struct {
	cfg     *bank.Config
	meta    *fapi.Metadata
	fc      *fapi.Client
	hc      *http.Client
	fapi2   bool
	release func()
}

// close releases the HTTP transport and keeps the server's DPoP nonce for
// the config's next request.
func (b *backend) closeConsentClient(name string, c *consentClient) {
	if n := c.fc.DPoPNonce(); n != "" {
		b.dpopNonces.Store(name, n)
	}
	c.release()
}

// consentClientFor builds the FAPI client of config name: the stored
// config with its keys, checked again (purposes and pins: the PAR, token
// and revocation endpoints must be under the signing key's
// allowed_endpoints), and the mount's egress. A config that is missing or
// not an authorization_code config is a 400.
func (b *backend) consentClientFor(ctx context.Context, s logical.Storage, name string) (*consentClient, *logical.Response, error) {
	cfg, err := readConfig(ctx, s, name)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return nil, logical.ErrorResponse("no config %s: write config/%s with grant_type=authorization_code first", name, name), nil
	}
	if !cfg.IsAuthorizationCode() {
		return nil, logical.ErrorResponse("config %s does not have grant_type authorization_code: consents need one", name), nil
	}
	if cfg, err = b.refreshAuthServer(ctx, s, name, cfg); err != nil || cfg == nil { // metadata older than 24h (config_authcode_refresh.go)
		return nil, logical.ErrorResponse("no config %s", name), err
	}
	if err := cfg.Validate(); err != nil { // purposes and pins, as they are now
		var fe *bank.FieldError
		if errors.As(err, &fe) {
			return nil, logical.ErrorResponse("config %s: invalid %s: %s", name, fe.Field, fe.Message), nil
		}
		return nil, nil, err
	}
	meta, err := authServerMetadata(cfg)
	if err != nil {
		return nil, logical.ErrorResponse("config %s: %s", name, err), nil
	}
	hc, release, err := b.authServerHTTP(ctx, s, cfg)
	if err != nil {
		return nil, nil, err
	}
	clientID := cfg.Value(bank.FieldClientID)
	fc := &fapi.Client{HTTP: hc, Metadata: meta, ClientID: clientID, Now: b.clock.Now}
	keys := cfg.Keys()
	switch cfg.Value(bank.FieldAuthMethod) {
	case bank.AuthPrivateKeyJWT:
		fc.Auth = fapi.PrivateKeyJWT{ClientID: clientID, Issuer: cfg.AssertionAudienceOrIssuer(), Signer: keys.Signing}
	default:
		fc.Auth = fapi.TLSClientAuth{}
	}
	if ks, ok := keys.DPoP.(keySigner); ok {
		fc.DPoP = fapi.KeyDPoP{Key: ks.k, Now: b.clock.Now}
	}
	if n, ok := b.dpopNonces.Load(name); ok {
		fc.SetDPoPNonce(n.(string))
	}
	return &consentClient{cfg: cfg, meta: meta, fc: fc, hc: hc, fapi2: cfg.Settings[bank.FieldFAPI] == bank.FAPI2, release: release}, nil, nil
}
