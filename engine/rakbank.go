package engine

import (
	"context"
	"encoding/json"
	"net/http"

	uuid "github.com/hashicorp/go-uuid"
)

// rakbank is RAKBANK's partner_auth (IBM API Connect): API keys in
// X-IBM-Client-Id / X-IBM-Client-Secret, a fresh UUID MsgId per request, and
// a JSON client_credentials body with the scope and optional oauth_metadata.
type rakbank struct{}

func init() { register(rakbank{}) }

func (rakbank) Name() string           { return "rakbank" }
func (rakbank) DefaultBaseURL() string { return "https://sandboxapi.rakbank.ae/sb/api" }
func (rakbank) Fields() []Field {
	return []Field{
		clientIDField,
		clientSecretField,
		{Name: FieldScope, Required: true, Description: "Scope being requested (1 to 500 characters)."},
		{Name: FieldOAuthMetadata, Description: `JSON object included in the token, e.g. {"account_id":"..."}.`},
	}
}

// rakbankRequest is the access_token_request schema: no other keys allowed.
type rakbankRequest struct {
	GrantType     string         `json:"grant_type"`
	Scope         string         `json:"scope"`
	OAuthMetadata map[string]any `json:"oauth_metadata,omitempty"`
}

func (p rakbank) fetch(ctx context.Context, c *Client, _ *Token) (*Token, error) {
	return c.withRetries(ctx, func(ctx context.Context) (*Token, error) { return p.once(ctx, c) })
}

// once is one token request, with a fresh MsgId.
func (p rakbank) once(ctx context.Context, c *Client) (*Token, error) {
	msgID, err := uuid.GenerateUUID()
	if err != nil {
		return nil, &UpstreamError{Provider: p.Name(), Step: "token", Message: "cannot generate MsgId: " + err.Error()}
	}
	body, err := json.Marshal(rakbankRequest{GrantType: "client_credentials", Scope: c.cfg.Value(FieldScope), OAuthMetadata: c.cfg.OAuthMetadata})
	if err != nil {
		return nil, &UpstreamError{Provider: p.Name(), Step: "token", Message: "cannot encode oauth_metadata"}
	}
	h := headers(
		"X-IBM-Client-Id", c.cfg.Value(FieldClientID),
		"X-IBM-Client-Secret", c.cfg.Value(FieldClientSecret),
		"MsgId", msgID,
		"Content-Type", "application/json",
		"Accept", "application/json")
	start := c.now()
	a, err := c.do(ctx, exchange{step: "token", method: http.MethodPost, path: "/v1/partner_auth/token", header: h, body: body})
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, c.rejection("token", a)
	}
	return c.parseToken("token", a, start)
}
