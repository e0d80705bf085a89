package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// isbank is Türkiye İş Bankası's "Server to Server Security" (IBM API
// Connect): a GET for an authorization code, authenticated by the service
// account and API keys in headers, then a GET carrying a form body that
// trades the code for a token under Basic auth.
//
// The page documents no refresh call, so every new token runs both steps;
// the refresh token in the answer is kept but not used.
type isbank struct{}

func init() { register(isbank{}) }

// DefaultIsbankScope is the scope sent when a config sets none: the one the
// bank's page shows.
const DefaultIsbankScope = "read:accounts all:remittance all:eft"

func (isbank) Name() string           { return "isbank" }
func (isbank) DefaultBaseURL() string { return "" }
func (isbank) Fields() []Field {
	return []Field{
		clientIDField,
		clientSecretField,
		{Name: FieldServiceAccountID, Required: true, Description: "Service Account ID (X-Service-Account-ID)."},
		{Name: FieldServiceAccountSecret, Required: true, Secret: true, Description: "Service Account Secret (X-Service-Account-Secret). Write-only."},
		{Name: FieldScope, Default: DefaultIsbankScope, Description: "Space-separated scopes sent in the scope header of the code request."},
	}
}

// fetch retries the whole two-step flow on a transient failure, never the
// token step alone: the code is single-use, and a bank that failed after
// reading it (a 502 from its gateway, a reset connection) may have consumed
// it, so a retry starts over with a new code.
func (p isbank) fetch(ctx context.Context, c *Client, _ *Token) (*Token, error) {
	return c.withRetries(ctx, func(ctx context.Context) (*Token, error) { return p.twoSteps(ctx, c) })
}

func (p isbank) twoSteps(ctx context.Context, c *Client) (*Token, error) {
	// Both steps must fit the request budget: a code without the budget to
	// trade it would be wasted.
	if c.budget != nil {
		if err := c.budget.room(p.Name(), c.now(), 2); err != nil {
			return nil, err
		}
	}
	cfg := c.cfg
	// Header names are sent exactly as the bank's page spells them.
	h := headers(
		"X-Service-Account-ID", cfg.Value(FieldServiceAccountID),
		"X-Service-Account-Secret", cfg.Value(FieldServiceAccountSecret),
		"X-IBM-client-id", cfg.Value(FieldClientID),
		"X-IBM-client-secret", cfg.Value(FieldClientSecret),
		"scope", cfg.Value(FieldScope),
		"Accept", "application/json")
	a, err := c.do(ctx, exchange{step: "code", method: http.MethodGet, path: "/api/v1/s2s-oauth2/code", header: h})
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, c.rejection("code", a)
	}
	var code struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(a.body, &code) != nil || code.Code == "" {
		if rej := c.rejection("code", a); rej.Code != "" {
			return nil, rej
		}
		return nil, &UpstreamError{Provider: p.Name(), Step: "code", Status: a.status, Message: "response has no code"}
	}

	form := url.Values{"grant_type": {"authorization_code"}, "code": {code.Code}}
	h = headers("Content-Type", "application/x-www-form-urlencoded", "Accept", "application/json")
	start := c.now()
	a, err = c.do(ctx, exchange{step: "token", method: http.MethodGet, path: "/api/v1/s2s-oauth2/token", header: h,
		body: []byte(form.Encode()), basic: true, user: cfg.Value(FieldClientID), pass: cfg.Value(FieldClientSecret)})
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, c.rejection("token", a)
	}
	return c.parseToken("token", a, start)
}
