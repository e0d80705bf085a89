package bankauth

import (
	"context"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/hashicorp/vault/sdk/logical"
)

// consentSource is package broker's view of the mount's consents
// (broker.ConsentSource): their records in storage and the refresh grant
// through package fapi. Requests pass their own storage; background work
// the mount's.
type consentSource struct {
	b *backend
	s logical.Storage
}

var _ broker.ConsentSource = consentSource{}

// LoadConsent reads the consent and its config: two storage reads, made
// only when memory holds nothing for the consent.
func (c consentSource) LoadConsent(ctx context.Context, config, id string) (broker.ConsentToken, error) {
	rec, err := readConsent(ctx, c.s, config, id)
	if err != nil {
		return broker.ConsentToken{}, err
	}
	if rec == nil {
		return broker.ConsentToken{}, broker.NoConsentError{Config: config, ID: id}
	}
	if rec.State != consentAuthorized || rec.Token == nil {
		return broker.ConsentToken{}, reauthError(config, id, rec)
	}
	return c.withConfig(ctx, config, rec.Token)
}

// RenewConsent runs the refresh grant under the consent's lock (which
// callbacks, new attempts and deletes hold too), unless storage holds a
// fresh token other than held: another node or request renewed it.
func (c consentSource) RenewConsent(ctx context.Context, config, id, held string) (broker.ConsentToken, error) {
	defer c.b.consents.lock(config, id)()
	rec, err := readConsent(ctx, c.s, config, id)
	if err != nil {
		return broker.ConsentToken{}, err
	}
	if rec == nil {
		return broker.ConsentToken{}, broker.NoConsentError{Config: config, ID: id}
	}
	if rec.State != consentAuthorized || rec.Token == nil {
		return broker.ConsentToken{}, reauthError(config, id, rec)
	}
	if rec.Token.AccessToken != held && consentTokenFresh(rec.Token, c.b.clock.Now()) {
		return c.withConfig(ctx, config, rec.Token)
	}
	tok, err := c.b.refreshConsent(ctx, c.s, config, id, rec)
	if err != nil {
		return broker.ConsentToken{}, err
	}
	return c.withConfig(ctx, config, tok)
}

// ExpireAttempt removes the consent's attempt once it has expired: its
// secrets (PKCE verifier, state, nonce) leave storage, and a consent never
// authorized shows expired. Its entry in the attempt index goes with it.
func (c consentSource) ExpireAttempt(ctx context.Context, config, id string) error {
	defer c.b.consents.lock(config, id)()
	now := c.b.clock.Now()
	rec, err := readConsent(ctx, c.s, config, id)
	if err != nil {
		return err
	}
	if rec != nil && rec.Attempt != nil && !now.Before(rec.Attempt.ExpiresAt) {
		rec.Attempt = nil
		if rec.State == consentPending && rec.Token == nil {
			rec.State = consentExpired
		}
		if err := putConsent(ctx, c.s, config, id, rec); err != nil {
			return err
		}
		c.b.Logger().Debug("expired consent attempt removed", "config", config, "consent", id)
	}
	return dropAttemptIndex(ctx, c.s, config, id, now)
}

// SweepAttempts removes the expired attempts the attempt index names:
// storage lists only attempts not yet swept, never every consent. more
// reports attempts left to expire.
func (c consentSource) SweepAttempts(ctx context.Context) (more bool, err error) {
	configs, err := c.s.List(ctx, attemptIndexPrefix)
	if err != nil {
		return true, err
	}
	for _, cfg := range configs {
		config := strings.TrimSuffix(cfg, "/")
		ids, err := c.s.List(ctx, attemptIndexPrefix+cfg)
		if err != nil {
			return true, err
		}
		for _, id := range ids {
			exp, err := readAttemptIndex(ctx, c.s, config, id)
			if err != nil {
				return true, err
			}
			if !exp.IsZero() && c.b.clock.Now().Before(exp) {
				more = true
				continue
			}
			if err := c.ExpireAttempt(ctx, config, id); err != nil {
				return true, err
			}
		}
	}
	return more, nil
}

// withConfig is tok with its config's settings for reads.
func (c consentSource) withConfig(ctx context.Context, config string, tok *fapi.Token) (broker.ConsentToken, error) {
	cfg, err := readStoredConfig(ctx, c.s, config)
	if err != nil {
		return broker.ConsentToken{}, err
	}
	if cfg == nil {
		return broker.ConsentToken{}, broker.NoConfigError(config)
	}
	return consentTokenOf(tok, cfg), nil
}

// consentTokenOf is what package broker keeps of a consent's token: never
// its refresh token.
func consentTokenOf(t *fapi.Token, cfg *bank.Config) broker.ConsentToken {
	issued := t.IssuedAt
	if issued.IsZero() {
		issued = t.ExpiresAt.Add(-consentDefaultLifetime)
	}
	return broker.ConsentToken{
		Token:       bank.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, Scope: t.Scope, ObtainedAt: issued, ExpiresAt: t.ExpiresAt},
		Refreshable: t.RefreshToken != "",
		Lease:       !cfg.NoLease,
		Idle:        cfg.EffectiveBackgroundRefreshIdle(),
	}
}
