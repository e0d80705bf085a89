package fapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// PushRequest is one authorization request to push (RFC 9126).
type PushRequest struct {
	RedirectURI string
	Scope       string // space-separated
	State       string
	// Nonce is required when Scope has openid.
	Nonce string
	// CodeChallenge is the S256 challenge of the attempt's verifier.
	CodeChallenge string
	// AuthorizationDetails, when set, is an RFC 9396 JSON array of objects
	// each with a "type".
	AuthorizationDetails json.RawMessage
	// Claims, when set, is an OpenID Connect claims request (a JSON object).
	Claims json.RawMessage
	// Params are further request parameters; they cannot replace the ones
	// set here (ReservedParams).
	Params map[string]string
}

// PushResponse is the PAR endpoint's answer.
type PushResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// ReservedParams are the request parameters Push sets (or that only client
// authentication and the token endpoint send): PushRequest.Params cannot
// name them.
var ReservedParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
	"code_challenge_method", "dpop_jkt", "prompt", "authorization_details", "claims", "request",
	"request_uri", "response_mode", "client_assertion", "client_assertion_type", "client_secret",
	"code", "code_verifier", "grant_type", "refresh_token",
}

// HasScope reports whether the space-separated scope contains s.
func HasScope(scope, s string) bool { return slices.Contains(strings.Fields(scope), s) }

// Push sends the pushed authorization request: response_type=code,
// client_id, redirect_uri, scope, state, nonce (with openid),
// code_challenge with method S256, dpop_jkt with a DPoP key (RFC 9449
// section 10), prompt=consent when the scope has both openid and
// offline_access (OpenID Connect Core section 11), authorization_details,
// claims and the extra parameters, with client authentication and a DPoP
// proof (sent again once with the server's nonce when it asks for one).
func (c *Client) Push(ctx context.Context, r PushRequest) (*PushResponse, error) {
	if err := c.ready(StepPAR); err != nil {
		return nil, err
	}
	form, err := c.pushForm(r)
	if err != nil {
		return nil, err
	}
	secrets := []string{r.State, r.Nonce, r.CodeChallenge}
	a, secrets, err := c.post(ctx, StepPAR, c.Metadata.PushedAuthorizationRequestEndpoint, form, true, secrets)
	if err != nil {
		return nil, err
	}
	if !ok2xx(a.status) {
		return nil, rejection(StepPAR, a, secrets)
	}
	var pr PushResponse
	if err := json.Unmarshal(a.body, &pr); err != nil {
		return nil, &Error{Step: StepPAR, Status: a.status, Msg: "the answer is not the JSON of a PAR response"}
	}
	if pr.RequestURI == "" || len(pr.RequestURI) > 2048 {
		return nil, &Error{Step: StepPAR, Status: a.status, Msg: "the answer has no usable request_uri"}
	}
	if pr.ExpiresIn <= 0 {
		return nil, &Error{Step: StepPAR, Status: a.status, Msg: "the answer has no positive expires_in"}
	}
	return &pr, nil
}

// pushForm builds and checks the PAR form (without client_id and
// authentication, which post adds). Errors name parameters, never values.
func (c *Client) pushForm(r PushRequest) (url.Values, error) {
	bad := func(format string, a ...any) error {
		return &Error{Step: StepPAR, Msg: fmt.Sprintf(format, a...)}
	}
	if u, err := url.Parse(r.RedirectURI); err != nil || !u.IsAbs() || u.Fragment != "" {
		return nil, bad("redirect_uri must be an absolute URL without fragment")
	}
	if r.State == "" {
		return nil, bad("state is required")
	}
	if len(r.CodeChallenge) != 43 {
		return nil, bad("code_challenge must be an S256 challenge")
	}
	openid := HasScope(r.Scope, "openid")
	if openid && r.Nonce == "" {
		return nil, bad("nonce is required with scope openid")
	}
	form := url.Values{
		"response_type":         {"code"},
		"redirect_uri":          {r.RedirectURI},
		"state":                 {r.State},
		"code_challenge":        {r.CodeChallenge},
		"code_challenge_method": {CodeChallengeMethod},
	}
	if r.Scope != "" {
		form.Set("scope", r.Scope)
	}
	if openid {
		form.Set("nonce", r.Nonce)
		if HasScope(r.Scope, "offline_access") {
			form.Set("prompt", "consent")
		}
	}
	if c.DPoP != nil {
		jkt := c.DPoP.JKT()
		if jkt == "" {
			return nil, bad("the DPoP key has no thumbprint")
		}
		form.Set("dpop_jkt", jkt)
	}
	if len(r.AuthorizationDetails) > 0 {
		s, err := authorizationDetails(r.AuthorizationDetails)
		if err != nil {
			return nil, bad("authorization_details %s", err)
		}
		form.Set("authorization_details", s)
	}
	if len(r.Claims) > 0 {
		s, err := compactJSON(r.Claims, '{')
		if err != nil {
			return nil, bad("claims must be a JSON object")
		}
		form.Set("claims", s)
	}
	names := make([]string, 0, len(r.Params))
	for k := range r.Params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if k == "" || slices.Contains(ReservedParams, k) {
			return nil, bad("parameter %q is set by bankauth and cannot be given in params", cleanText(k, nil))
		}
		form.Set(k, r.Params[k])
	}
	return form, nil
}

// authorizationDetails checks RFC 9396 section 2: a JSON array of objects,
// each with a string "type"; it returns the array compacted.
func authorizationDetails(raw json.RawMessage) (string, error) {
	s, err := compactJSON(raw, '[')
	if err != nil {
		return "", fmt.Errorf("must be a JSON array")
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &items); err != nil {
		return "", fmt.Errorf("must be a JSON array of objects")
	}
	if len(items) == 0 {
		return "", fmt.Errorf("must not be empty")
	}
	for i, it := range items {
		var typ string
		if json.Unmarshal(it["type"], &typ) != nil || typ == "" {
			return "", fmt.Errorf("element %d has no string \"type\"", i)
		}
	}
	return s, nil
}

// compactJSON checks raw is valid JSON starting with open ('{' or '[') and
// returns it compacted.
func compactJSON(raw json.RawMessage, open byte) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil || buf.Len() == 0 || buf.Bytes()[0] != open {
		return "", fmt.Errorf("not JSON of the right kind")
	}
	return buf.String(), nil
}

// AuthorizationURL is where the user is sent after a push: the
// authorization endpoint (its own query kept) with only client_id and
// request_uri (RFC 9126 section 4).
func AuthorizationURL(meta *Metadata, clientID, requestURI string) (string, error) {
	if meta == nil || meta.AuthorizationEndpoint == "" {
		return "", &Error{Step: StepPAR, Msg: "the authorization server has no authorization_endpoint"}
	}
	u, err := url.Parse(meta.AuthorizationEndpoint)
	if err != nil {
		return "", &Error{Step: StepPAR, Msg: "authorization_endpoint is not a URL"}
	}
	q := u.Query()
	q.Set("client_id", clientID)
	q.Set("request_uri", requestURI)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
