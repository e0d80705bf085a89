package fapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one authorization server as one client: PAR, the token
// endpoint, revocation. It is safe for concurrent use; it keeps the
// server's latest DPoP nonce.
type Client struct {
	// HTTP sends every request: the caller's egress-controlled client
	// (with the client certificate for mutual TLS). Required.
	HTTP *http.Client
	// Metadata is the server's, from Discover or written by hand.
	Metadata *Metadata
	ClientID string
	// Auth authenticates the client at the PAR, token and revocation
	// endpoints. Required.
	Auth ClientAuth
	// DPoP, when set, signs a proof for every PAR and token request and
	// binds the tokens to its key; nil means no DPoP.
	DPoP DPoPSigner
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	nonce nonceStore
}

// DPoPNonce is the server's latest DPoP nonce ("" if none yet).
func (c *Client) DPoPNonce() string { return c.nonce.get() }

// SetDPoPNonce makes n, a nonce learned earlier, the one the next proof
// carries.
func (c *Client) SetDPoPNonce(n string) { c.nonce.set(n) }

func (c *Client) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// post sends form to endpoint with client_id, the client's authentication
// and, when dpop, a DPoP proof; a use_dpop_nonce answer is sent again once
// with the server's nonce (a fresh assertion and proof). secrets are the
// form's secret values; the answer is returned with them and the
// assertions and proofs sent, for the caller's errors.
func (c *Client) post(ctx context.Context, step, endpoint string, form url.Values, dpop bool, secrets []string) (*answer, []string, error) {
	if endpoint == "" {
		return nil, secrets, &Error{Step: step, Msg: "the authorization server has no endpoint for it"}
	}
	if c.Auth == nil || c.ClientID == "" {
		return nil, secrets, &Error{Step: step, Msg: "the client has no client ID or authentication"}
	}
	if dpop && c.DPoP == nil {
		dpop = false
	}
	for try := 0; ; try++ {
		f := make(url.Values, len(form)+3)
		for k, v := range form {
			f[k] = v
		}
		f.Set("client_id", c.ClientID)
		added, err := c.Auth.Authenticate(f, c.now())
		secrets = append(secrets, added...)
		if err != nil {
			return nil, secrets, &Error{Step: step, Msg: "client authentication: " + cleanText(err.Error(), secrets)}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(f.Encode()))
		if err != nil {
			return nil, secrets, &Error{Step: step, Msg: "invalid endpoint URL"}
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if dpop {
			proof, err := c.DPoP.Proof(http.MethodPost, htu(endpoint), c.nonce.get(), "")
			if err != nil {
				return nil, secrets, &Error{Step: step, Msg: "cannot sign the DPoP proof: " + cleanText(err.Error(), secrets)}
			}
			secrets = append(secrets, proof)
			req.Header.Set("DPoP", proof)
		}
		a, err := roundTrip(c.HTTP, req, step, secrets)
		if err != nil {
			return nil, secrets, err
		}
		if dpop {
			c.nonce.set(a.header.Get("DPoP-Nonce"))
			if try == 0 && isUseDPoPNonce(a) {
				continue
			}
		}
		return a, secrets, nil
	}
}

// ready checks what every request needs.
func (c *Client) ready(step string) error {
	if c.Metadata == nil {
		return &Error{Step: step, Msg: "the client has no authorization server metadata"}
	}
	return nil
}
