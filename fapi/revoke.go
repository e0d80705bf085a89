package fapi

import (
	"context"
	"net/url"
)

// Revoke revokes a refresh token at the revocation endpoint (RFC 7009),
// with client authentication and token_type_hint refresh_token. The
// server answers 200 for a token it revoked and for one it did not know
// (section 2.2); anything else is an *Error (503 means try again later).
func (c *Client) Revoke(ctx context.Context, refreshToken string) error {
	if err := c.ready(StepRevoke); err != nil {
		return err
	}
	if refreshToken == "" {
		return &Error{Step: StepRevoke, Msg: "no token to revoke"}
	}
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	a, secrets, err := c.post(ctx, StepRevoke, c.Metadata.RevocationEndpoint, form, false, []string{refreshToken})
	if err != nil {
		return err
	}
	if !ok2xx(a.status) {
		return rejection(StepRevoke, a, secrets)
	}
	return nil
}
