package fapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Token types a Token can have.
const (
	TokenTypeDPoP   = "DPoP"
	TokenTypeBearer = "Bearer"
)

// Token is the token endpoint's answer. AccessToken, RefreshToken and
// IDToken are secrets: a Token prints them as "[redacted]" with every fmt
// verb, but marshals them to JSON for storage.
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // DPoP or Bearer
	// ExpiresAt is IssuedAt plus expires_in; zero when the server gave none.
	ExpiresAt time.Time `json:"expires_at,omitempty"`
	// RefreshToken is empty when the server sent none (on a refresh: kept
	// the old one).
	RefreshToken string `json:"refresh_token,omitempty"`
	// RefreshTokenExpiresAt is from refresh_token_expires_in; zero when
	// the server gave none.
	RefreshTokenExpiresAt time.Time `json:"refresh_token_expires_at,omitempty"`
	// Scope is the granted scope; "" when the server did not say (RFC 6749
	// section 5.1: then it is the requested scope).
	Scope                string          `json:"scope,omitempty"`
	IDToken              string          `json:"id_token,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	IssuedAt             time.Time       `json:"issued_at"`
}

// Format implements fmt.Formatter, keeping the secrets out.
func (t Token) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, fmt.Sprintf("fapi.Token{access_token:%s token_type:%s expires_at:%s refresh_token:%s scope:%q}",
		redacted, t.TokenType, t.ExpiresAt.UTC().Format(time.RFC3339), redactedIf(t.RefreshToken), t.Scope))
}

func redactedIf(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// Exchange redeems the attempt's authorization code (grant_type
// authorization_code with code, redirect_uri and code_verifier), with
// client authentication and a DPoP proof (sent again once with the
// server's nonce). When the answer has no scope, the attempt's is kept.
func (c *Client) Exchange(ctx context.Context, a *Attempt, code string) (*Token, error) {
	if err := c.ready(StepToken); err != nil {
		return nil, err
	}
	if code == "" {
		return nil, &Error{Step: StepToken, Msg: "no authorization code"}
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.RedirectURI},
		"code_verifier": {a.Verifier}}
	t, err := c.tokenRequest(ctx, StepToken, form, []string{code, a.Verifier, a.State, a.Nonce})
	if err != nil {
		return nil, err
	}
	if t.Scope == "" {
		t.Scope = a.Scope
	}
	return t, nil
}

// Refresh uses a refresh token (grant_type refresh_token; scope only when
// not empty) with client authentication and a DPoP proof. A server that
// rotates refresh tokens answers a new one in RefreshToken: the caller
// must store it before using the new access token, and never send the old
// one again.
func (c *Client) Refresh(ctx context.Context, refreshToken, scope string) (*Token, error) {
	if err := c.ready(StepRefresh); err != nil {
		return nil, err
	}
	if refreshToken == "" {
		return nil, &Error{Step: StepRefresh, Msg: "no refresh token"}
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return c.tokenRequest(ctx, StepRefresh, form, []string{refreshToken})
}

// tokenRequest posts form to the token endpoint and reads the answer.
func (c *Client) tokenRequest(ctx context.Context, step string, form url.Values, secrets []string) (*Token, error) {
	issued := c.now()
	a, secrets, err := c.post(ctx, step, c.Metadata.TokenEndpoint, form, true, secrets)
	if err != nil {
		return nil, err
	}
	if !ok2xx(a.status) {
		return nil, rejection(step, a, secrets)
	}
	t, msg := c.parseToken(a.body, issued)
	if msg != "" {
		return nil, &Error{Step: step, Status: a.status, Msg: msg}
	}
	return t, nil
}

// tokenResponse is RFC 6749 section 5.1's answer, with RFC 9396's
// authorization_details and the refresh_token_expires_in some banks send.
type tokenResponse struct {
	AccessToken           string          `json:"access_token"`
	TokenType             string          `json:"token_type"`
	ExpiresIn             seconds         `json:"expires_in"`
	RefreshToken          string          `json:"refresh_token"`
	RefreshTokenExpiresIn seconds         `json:"refresh_token_expires_in"`
	Scope                 string          `json:"scope"`
	IDToken               string          `json:"id_token"`
	AuthorizationDetails  json.RawMessage `json:"authorization_details"`
}

// seconds is a lifetime given as a JSON number or a numeric string (some
// banks send "3600"); -1 means absent.
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	if str == "null" || str == "" {
		*s = -1
		return nil
	}
	n, err := strconv.ParseFloat(str, 64)
	if err != nil || n < 0 || n > 1e10 {
		return fmt.Errorf("not a lifetime in seconds")
	}
	*s = seconds(n)
	return nil
}

// parseToken reads a success answer issued at issued; msg says what is
// wrong with it (never quoting it).
func (c *Client) parseToken(body []byte, issued time.Time) (*Token, string) {
	r := tokenResponse{ExpiresIn: -1, RefreshTokenExpiresIn: -1}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, "the answer is not the JSON of a token response"
	}
	if r.AccessToken == "" {
		return nil, "the answer has no access_token"
	}
	t := &Token{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken, Scope: r.Scope, IDToken: r.IDToken, IssuedAt: issued}
	switch {
	case strings.EqualFold(r.TokenType, TokenTypeDPoP):
		if c.DPoP == nil {
			return nil, "the answer's token_type is DPoP, but no DPoP key was used"
		}
		t.TokenType = TokenTypeDPoP
	case strings.EqualFold(r.TokenType, TokenTypeBearer):
		if c.DPoP != nil {
			return nil, "the answer's token_type is Bearer, not DPoP: the server did not bind the token to the DPoP key"
		}
		t.TokenType = TokenTypeBearer
	default:
		return nil, "the answer's token_type " + quoteAlg(r.TokenType) + " is neither DPoP nor Bearer"
	}
	if r.ExpiresIn >= 0 {
		t.ExpiresAt = issued.Add(time.Duration(r.ExpiresIn) * time.Second)
	}
	if r.RefreshTokenExpiresIn > 0 {
		t.RefreshTokenExpiresAt = issued.Add(time.Duration(r.RefreshTokenExpiresIn) * time.Second)
	}
	if d := bytes.TrimSpace(r.AuthorizationDetails); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if d[0] != '[' {
			return nil, "the answer's authorization_details is not a JSON array"
		}
		t.AuthorizationDetails = d
	}
	return t, ""
}
