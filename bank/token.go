package bank

import (
	"fmt"
	"time"
)

// Token is an access token obtained from a bank, with what is needed to
// decide when to replace it and how (a refresh token, where the bank gives one).
type Token struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	Scope        string    `json:"scope"`
	ObtainedAt   time.Time `json:"obtained_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	// RefreshExpiresAt is zero when the bank did not say how long the refresh
	// token lasts.
	RefreshExpiresAt time.Time `json:"refresh_expires_at,omitempty"`
	// ConfigKey is the CacheKey of the config the token was obtained for.
	ConfigKey string `json:"config_key,omitempty"`
}

// MinRefreshMargin is the least time before expiry at which a token stops
// being handed out.
const MinRefreshMargin = 2 * time.Second

// RefreshMargin is how long before its expiry a token of the given lifetime
// stops being handed out: a fifth of the lifetime, at least MinRefreshMargin.
//
// A fifth is chosen for Vault Agent: Agent re-reads a non-renewable lease at
// 85-95% of its TTL, when at most 15% of the token's life is left, so the
// re-read always finds the token stale and renders a new one.
func RefreshMargin(lifetime time.Duration) time.Duration {
	m := lifetime / 5
	if m < MinRefreshMargin {
		m = MinRefreshMargin
	}
	return m
}

// Lifetime is the token's whole life as granted by the bank.
func (t *Token) Lifetime() time.Duration { return t.ExpiresAt.Sub(t.ObtainedAt) }

// StaleAt is the moment from which the token is no longer handed out.
func (t *Token) StaleAt() time.Time { return t.ExpiresAt.Add(-RefreshMargin(t.Lifetime())) }

// FreshAt reports whether the token may still be handed out at now.
func (t *Token) FreshAt(now time.Time) bool { return t != nil && now.Before(t.StaleAt()) }

// CanRefreshAt reports whether the token's refresh token is worth trying at now.
func (t *Token) CanRefreshAt(now time.Time) bool {
	if t == nil || t.RefreshToken == "" {
		return false
	}
	return t.RefreshExpiresAt.IsZero() || now.Add(MinRefreshMargin).Before(t.RefreshExpiresAt)
}

// String describes the token without any secret, so that a stray %v in a log
// line or a panic never prints the token itself.
func (t Token) String() string {
	return fmt.Sprintf("Token{type=%s scope=%q expires_at=%s refreshable=%t}",
		t.TokenType, t.Scope, t.ExpiresAt.UTC().Format(time.RFC3339), t.RefreshToken != "")
}

// GoString is String, for %#v.
func (t Token) GoString() string { return t.String() }
