package engine

import (
	"context"
	"net/http"
	"net/url"
)

// accelerationcloud is Acceleration Cloud: client_credentials and user_id in
// the query string of a POST with Basic auth. The platform reports most
// failures with HTTP 200 and {"code":...,"errorMessage":...}, so success
// is a body with an access_token, not a status code.
type accelerationcloud struct{}

func init() { register(accelerationcloud{}) }

func (accelerationcloud) Name() string           { return "accelerationcloud" }
func (accelerationcloud) DefaultBaseURL() string { return "https://api-dev.fintechautomation.com" }
func (accelerationcloud) Fields() []Field {
	return []Field{
		clientIDField,
		clientSecretField,
		{Name: FieldUserID, Required: true, Description: "UserId that Acceleration Cloud assigned."},
	}
}

func (p accelerationcloud) fetch(ctx context.Context, c *Client, _ *Token) (*Token, error) {
	return c.withRetries(ctx, func(ctx context.Context) (*Token, error) { return p.once(ctx, c) })
}

func (p accelerationcloud) once(ctx context.Context, c *Client) (*Token, error) {
	q := url.Values{"grant_type": {"client_credentials"}, "user_id": {c.cfg.Value(FieldUserID)}}
	h := headers("Accept", "application/json")
	start := c.now()
	a, err := c.do(ctx, exchange{step: "token", method: http.MethodPost, path: "/api/v1/auth/oauth2/token?" + q.Encode(),
		header: h, basic: true, user: c.cfg.Value(FieldClientID), pass: c.cfg.Value(FieldClientSecret)})
	if err != nil {
		return nil, err
	}
	if a.status < 200 || a.status > 299 {
		return nil, c.rejection("token", a)
	}
	return c.parseToken("token", a, start)
}

// DefaultLimits is Acceleration Cloud's published authentication budget for
// the Standard tier: 10 requests a minute (and at most 10 in any 5 s, which
// the minute limit already implies) and 60 a day.
func (accelerationcloud) DefaultLimits() Limits { return Limits{PerMinute: 10, PerDay: 60} }
