package engine

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// MaxLifetime bounds the lifetime a bank may grant, so a garbled expires_in
// cannot pin a token in the cache for years.
const MaxLifetime = 366 * 24 * time.Hour

// parseToken reads a successful token response. obtainedAt is when the
// request was sent, so expiry errs on the early side.
//
// The access token must be a non-empty string; expires_in a positive number
// of seconds (when absent, a JWT access token's exp is used, else the
// config's default_lifetime if set). The refresh
// token may be called refresh_token or refreshToken (eTranzact's table and
// sample disagree), its lifetime refresh_expires_in or
// refresh_token_expires_in.
func (c *Client) parseToken(step string, a *answer, obtainedAt time.Time) (*Token, error) {
	fail := func(format string, args ...any) error {
		return &UpstreamError{Provider: c.provider.Name(), Step: step, Status: a.status,
			Message: fmt.Sprintf(format, args...)}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &obj); err != nil || obj == nil {
		_, msg := describeErrorBody(a.body, a.contentType)
		if msg == "" {
			msg = "response is not a JSON object"
		}
		return nil, fail("%s", msg)
	}
	var tok Token
	if err := stringField(obj, "access_token", &tok.AccessToken); err != nil || tok.AccessToken == "" {
		// Banks that answer errors with HTTP 200 land here.
		if rej := c.rejection(step, a); rej.Code != "" || rej.Message != "" {
			return nil, rej
		}
		return nil, fail("response has no access_token")
	}
	if err := stringField(obj, "token_type", &tok.TokenType); err != nil {
		return nil, fail("token_type is not a string")
	}
	if tok.TokenType == "" {
		tok.TokenType = "bearer"
	}
	if err := stringField(obj, "scope", &tok.Scope); err != nil {
		return nil, fail("scope is not a string")
	}
	tok.ObtainedAt = obtainedAt
	life, ok, err := seconds(obj, "expires_in")
	switch {
	case err != nil:
		return nil, fail("expires_in: %v", err)
	case ok:
		tok.ExpiresAt = obtainedAt.Add(life)
	default:
		exp, ok := jwtExpiry(tok.AccessToken)
		if !ok && c.cfg.DefaultLifetime > 0 {
			tok.ExpiresAt = obtainedAt.Add(c.cfg.DefaultLifetime)
			break
		}
		if !ok {
			return nil, fail("response has no expires_in and the access token carries no expiry (set default_lifetime to assume one)")
		}
		if !exp.After(obtainedAt) || exp.Sub(obtainedAt) > MaxLifetime {
			return nil, fail("access token's exp claim is out of range")
		}
		tok.ExpiresAt = exp
	}
	for _, k := range []string{"refresh_token", "refreshToken"} {
		if err := stringField(obj, k, &tok.RefreshToken); err != nil {
			return nil, fail("%s is not a string", k)
		}
		if tok.RefreshToken != "" {
			break
		}
	}
	for _, k := range []string{"refresh_expires_in", "refresh_token_expires_in"} {
		rl, ok, err := seconds(obj, k)
		if err != nil {
			return nil, fail("%s: %v", k, err)
		}
		if ok {
			tok.RefreshExpiresAt = obtainedAt.Add(rl)
			break
		}
	}
	return &tok, nil
}

// stringField reads an optional string; null and absent leave dst empty.
func stringField(obj map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, dst)
}

// seconds reads an optional positive JSON number of seconds.
func seconds(obj map[string]json.RawMessage, key string) (time.Duration, bool, error) {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return 0, false, nil
	}
	var n float64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false, fmt.Errorf("must be a number of seconds")
	}
	// Bound in float seconds: a huge value would overflow time.Duration.
	if !(n > 0 && n <= MaxLifetime.Seconds()) {
		return 0, false, fmt.Errorf("must be a positive number of seconds up to %d", int64(MaxLifetime/time.Second))
	}
	return time.Duration(n * float64(time.Second)), true, nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it: the bank is
// the party that checks the token; bankauth only needs to know its life.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*claims.Exp), 0), true
}
