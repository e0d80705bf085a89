package fapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// DefaultAttemptTTL is how long an authorization attempt waits for its
// callback unless told otherwise.
const DefaultAttemptTTL = 10 * time.Minute

// BeginRequest asks for a new authorization attempt.
type BeginRequest struct {
	RedirectURI          string
	Scope                string
	AuthorizationDetails json.RawMessage
	Claims               json.RawMessage
	Params               map[string]string
	// TTL is how long the callback may take; 0 means DefaultAttemptTTL.
	TTL time.Duration
}

// Attempt is one authorization attempt: what the callback is checked
// against and the code exchanged with. State, Nonce and Verifier are
// secrets; an Attempt prints them as "[redacted]" with every fmt verb, but
// marshals them to JSON for storage.
type Attempt struct {
	State       string `json:"state"`
	Nonce       string `json:"nonce,omitempty"`
	Verifier    string `json:"code_verifier"`
	RedirectURI string `json:"redirect_uri"`
	Scope       string `json:"scope,omitempty"`
	// AuthorizationURL is where the user is sent.
	AuthorizationURL string    `json:"authorization_url"`
	CreatedAt        time.Time `json:"created_at"`
	ExpiresAt        time.Time `json:"expires_at"`
	// RequestURIExpiresAt is when the pushed request_uri stops working
	// (the user must have opened AuthorizationURL by then).
	RequestURIExpiresAt time.Time `json:"request_uri_expires_at"`
}

// Format implements fmt.Formatter, keeping the secrets out.
func (a Attempt) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, fmt.Sprintf("fapi.Attempt{state:%s nonce:%s code_verifier:%s redirect_uri:%s scope:%q expires_at:%s}",
		redacted, redacted, redacted, a.RedirectURI, a.Scope, a.ExpiresAt.UTC().Format(time.RFC3339)))
}

// Begin starts an authorization attempt: a fresh state, nonce (with
// openid) and PKCE verifier, the pushed request (PAR whenever the server
// offers it; else the request rides in the URL, FrontChannelURL), and the
// URL to send the user to. The attempt expires TTL after now.
func (c *Client) Begin(ctx context.Context, r BeginRequest) (*Attempt, error) {
	if err := c.ready(StepPAR); err != nil {
		return nil, err
	}
	now := c.now()
	pk, err := NewPKCE()
	if err != nil {
		return nil, &Error{Step: StepPAR, Msg: err.Error()}
	}
	state, err := NewState()
	if err != nil {
		return nil, &Error{Step: StepPAR, Msg: err.Error()}
	}
	var nonce string
	if HasScope(r.Scope, "openid") {
		if nonce, err = NewNonce(); err != nil {
			return nil, &Error{Step: StepPAR, Msg: err.Error()}
		}
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = DefaultAttemptTTL
	}
	push := PushRequest{RedirectURI: r.RedirectURI, Scope: r.Scope, State: state, Nonce: nonce,
		CodeChallenge: pk.Challenge, AuthorizationDetails: r.AuthorizationDetails, Claims: r.Claims, Params: r.Params}
	a := &Attempt{State: state, Nonce: nonce, Verifier: pk.Verifier, RedirectURI: r.RedirectURI, Scope: r.Scope,
		CreatedAt: now, ExpiresAt: now.Add(ttl), RequestURIExpiresAt: now.Add(ttl)}
	if !c.usesPAR() { // a server without PAR: the request goes through the browser
		if a.AuthorizationURL, err = c.FrontChannelURL(push); err != nil {
			return nil, err
		}
		return a, nil
	}
	pr, err := c.Push(ctx, push)
	if err != nil {
		return nil, err
	}
	if a.AuthorizationURL, err = AuthorizationURL(c.Metadata, c.ClientID, pr.RequestURI); err != nil {
		return nil, err
	}
	a.RequestURIExpiresAt = now.Add(time.Duration(pr.ExpiresIn) * time.Second)
	return a, nil
}
