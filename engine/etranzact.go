package engine

import (
	"context"
	"encoding/json"
	"net/http"
)

// etranzact is eTranzact AntPeer: a JSON username/password login and a JSON
// refresh grant, both POSTed to /auth/token.
type etranzact struct{}

func init() { register(etranzact{}) }

func (etranzact) Name() string           { return "etranzact" }
func (etranzact) DefaultBaseURL() string { return "https://demo.etranzact.com/bankit-api/antPeer/v1" }
func (etranzact) Fields() []Field {
	return []Field{
		{Name: FieldUsername, Required: true, Description: "AntPeer client application's username."},
		{Name: FieldPassword, Required: true, Secret: true, Description: "AntPeer client application's password. Write-only."},
	}
}

// fetch refreshes while the refresh token is good; if the bank rejects the
// refresh token it logs in again, once. Transient failures are retried per
// grant: a refresh that keeps failing with a 503 is not turned into a login.
func (p etranzact) fetch(ctx context.Context, c *Client, prev *Token) (*Token, error) {
	if prev.CanRefreshAt(c.now()) {
		tok, err := c.withRetries(ctx, func(ctx context.Context) (*Token, error) {
			return p.post(ctx, c, "refresh", map[string]string{
				"refresh_token": prev.RefreshToken,
				"grant_type":    "refresh_token",
			})
		})
		if err == nil {
			return tok, nil
		}
		if ue, ok := err.(*UpstreamError); !ok || !ue.Rejected() {
			return nil, err
		}
		c.logger.Info("refresh token rejected, logging in again", "provider", p.Name(), "status", err.(*UpstreamError).Status)
	}
	return c.withRetries(ctx, func(ctx context.Context) (*Token, error) {
		return p.post(ctx, c, "token", map[string]string{
			"username": c.cfg.Value(FieldUsername),
			"password": c.cfg.Value(FieldPassword),
		})
	})
}

func (etranzact) post(ctx context.Context, c *Client, step string, body map[string]string) (*Token, error) {
	data, _ := json.Marshal(body)
	h := headers("Content-Type", "application/json", "Accept", "application/json")
	start := c.now()
	a, err := c.do(ctx, exchange{step: step, method: http.MethodPost, path: "/auth/token", header: h, body: data})
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, c.rejection(step, a)
	}
	return c.parseToken(step, a, start)
}
