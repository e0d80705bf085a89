package fapi

import (
	"net/url"
)

// FrontChannelURL is the authorization request of RFC 6749 section 4.1.1
// for a server without PAR: the authorization endpoint (its own query kept)
// with client_id and every parameter a push would have sent (PKCE, state,
// nonce, dpop_jkt, prompt, authorization_details, claims, the extra ones).
// No client authentication goes with it: the browser carries it. A client
// that must use PAR (FAPI 2.0, or a server that requires it) never calls
// this.
func (c *Client) FrontChannelURL(r PushRequest) (string, error) {
	if c.Metadata == nil || c.Metadata.AuthorizationEndpoint == "" {
		return "", &Error{Step: StepPAR, Msg: "the authorization server has no authorization_endpoint"}
	}
	form, err := c.pushForm(r)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(c.Metadata.AuthorizationEndpoint)
	if err != nil {
		return "", &Error{Step: StepPAR, Msg: "authorization_endpoint is not a URL"}
	}
	q := u.Query()
	for k, v := range form {
		q[k] = v
	}
	q.Set("client_id", c.ClientID)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// usesPAR says whether Begin pushes the request: whenever the server
// offers a PAR endpoint.
func (c *Client) usesPAR() bool {
	return c.Metadata != nil && c.Metadata.PushedAuthorizationRequestEndpoint != ""
}
