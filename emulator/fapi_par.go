package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// requestURIPrefix is RFC 9126 section 2.2's request_uri form.
const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// s256Challenge matches an S256 code challenge: 43 base64url characters
// (RFC 7636 section 4.2).
var s256Challenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// fapiPAR serves POST FAPIPARPath (RFC 9126 section 2): client
// authentication, an optional DPoP proof (RFC 9449 section 10.1, with
// nonce challenges), and the authorization request's parameters, kept for
// fapiRequestURITTL under a single-use request_uri.
func (s *Server) fapiPAR(w http.ResponseWriter, r *http.Request, body []byte) {
	form, ferr := fapiForm(r, body)
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	jkt, ferr := s.fapiCheckDPoP(r, false, "")
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	client, ferr := s.fapiAuthenticate(r, form, s.fapiIssuer(r))
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	req, ferr := s.fapiParseRequest(client, form, jkt)
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	now := s.now()
	req.exp = now.Add(fapiRequestURITTL)
	uri := requestURIPrefix + randString(32)
	s.fapi.mu.Lock()
	s.fapi.sweep(now)
	s.fapi.requests[uri] = req
	s.fapi.stats.PAR++
	s.fapi.mu.Unlock()
	s.setDPoPNonce(w)
	writeJSON(w, http.StatusCreated, map[string]any{"request_uri": uri, "expires_in": seconds(fapiRequestURITTL)})
}

// fapiParseRequest checks a pushed authorization request's parameters:
// response_type code, a registered redirect_uri, PKCE S256, known scopes,
// dpop_jkt agreeing with the proof, RFC 9396 authorization_details and an
// OpenID claims object; request objects and request_uri are refused.
func (s *Server) fapiParseRequest(client *fapiClient, form url.Values, proofJKT string) (*fapiRequest, *fapiError) {
	bad := func(desc string) *fapiError { return badRequest("invalid_request", desc) }
	if form.Has("request_uri") {
		return nil, bad("request_uri must not be pushed (RFC 9126 section 2.1)")
	}
	if form.Has("request") {
		return nil, badRequest("request_not_supported", "request objects are not supported; push the parameters")
	}
	if rt := form.Get("response_type"); rt != "code" {
		return nil, badRequest("unsupported_response_type", "response_type must be code")
	}
	if rm := form.Get("response_mode"); rm != "" && rm != "query" {
		return nil, bad("response_mode must be query")
	}
	req := &fapiRequest{clientID: client.ID, redirectURI: form.Get("redirect_uri"), scope: form.Get("scope"),
		state: form.Get("state"), nonce: form.Get("nonce"), challenge: form.Get("code_challenge"),
		jkt: form.Get("dpop_jkt"), user: form.Get("login_hint")}
	if !slices.Contains(client.RedirectURIs, req.redirectURI) {
		return nil, bad("redirect_uri is missing or not registered for the client")
	}
	if form.Get("code_challenge_method") != "S256" {
		return nil, bad("code_challenge_method must be S256")
	}
	if !s256Challenge.MatchString(req.challenge) {
		return nil, bad("code_challenge must be an S256 challenge (43 base64url characters)")
	}
	s.fapi.mu.Lock()
	known := s.fapi.opts.Scopes
	s.fapi.mu.Unlock()
	for _, sc := range strings.Fields(req.scope) {
		if !slices.Contains(known, sc) {
			return nil, badRequest("invalid_scope", "scope "+sc+" is not known to the authorization server")
		}
	}
	req.scope = strings.Join(strings.Fields(req.scope), " ")
	switch {
	case req.jkt == "":
		req.jkt = proofJKT
	case proofJKT != "" && req.jkt != proofJKT:
		return nil, badRequest("invalid_dpop_proof", "dpop_jkt is not the thumbprint of the DPoP proof's key")
	case len(req.jkt) != 43:
		return nil, bad("dpop_jkt must be a base64url SHA-256 JWK thumbprint")
	}
	if len(req.state) > 1024 || len(req.nonce) > 1024 || len(req.user) > 256 {
		return nil, bad("state, nonce or login_hint is too long")
	}
	if raw := form.Get("authorization_details"); raw != "" {
		d, desc := parseAuthorizationDetails(raw)
		if desc != "" {
			return nil, badRequest("invalid_authorization_details", desc)
		}
		req.details = d
	}
	if raw := form.Get("claims"); raw != "" {
		var m map[string]json.RawMessage
		var buf bytes.Buffer
		if json.Unmarshal([]byte(raw), &m) != nil || m == nil || json.Compact(&buf, []byte(raw)) != nil {
			return nil, bad("claims must be a JSON object")
		}
		req.claims = buf.Bytes()
	}
	return req, nil
}

// parseAuthorizationDetails checks RFC 9396 section 2: a non-empty JSON
// array of objects, each with a string type. It returns the array
// compacted, or what is wrong.
func parseAuthorizationDetails(raw string) (json.RawMessage, string) {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &items); err != nil || len(items) == 0 {
		return nil, "authorization_details must be a non-empty JSON array of objects"
	}
	for i, it := range items {
		var typ string
		if it == nil || json.Unmarshal(it["type"], &typ) != nil || typ == "" {
			return nil, "authorization_details element " + strconv.Itoa(i) + " has no string type"
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(raw)); err != nil {
		return nil, "authorization_details is not valid JSON"
	}
	return buf.Bytes(), ""
}

// fapiAuthorize serves GET FAPIAuthorizePath (RFC 9126 section 4): only
// client_id and request_uri, which is used up. The user approves at once
// (or denies, with the deny knob) and is sent to the redirect URI with
// code (or error), state and iss (RFC 9207). Errors before the redirect
// URI is known are answered here.
func (s *Server) fapiAuthorize(w http.ResponseWriter, r *http.Request, _ []byte) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.fapiFail(w, badRequest("invalid_request", "the query cannot be parsed"))
		return
	}
	for k, v := range q {
		if k != "client_id" && k != "request_uri" {
			s.fapiFail(w, badRequest("invalid_request", "only client_id and request_uri are accepted; push the other parameters (PAR)"))
			return
		}
		if len(v) != 1 {
			s.fapiFail(w, badRequest("invalid_request", "parameter "+k+" is given more than once"))
			return
		}
	}
	clientID, uri := q.Get("client_id"), q.Get("request_uri")
	now := s.now()
	s.fapi.mu.Lock()
	req := s.fapi.requests[uri]
	if req != nil && req.clientID == clientID {
		delete(s.fapi.requests, uri) // single use, RFC 9126 section 7.3
	}
	user, deny := s.fapi.user, s.fapi.deny
	s.fapi.mu.Unlock()
	switch {
	case clientID == "" || uri == "":
		s.fapiFail(w, badRequest("invalid_request", "client_id and request_uri are required"))
		return
	case req == nil:
		s.fapiFail(w, badRequest("invalid_request_uri", "request_uri is unknown, used or expired"))
		return
	case req.clientID != clientID:
		s.fapiFail(w, badRequest("invalid_request_uri", "request_uri was not pushed by this client"))
		return
	case !now.Before(req.exp):
		s.fapiFail(w, badRequest("invalid_request_uri", "request_uri has expired"))
		return
	}
	if req.user != "" {
		user = req.user
	}
	resp := url.Values{"iss": {s.fapiIssuer(r)}}
	if req.state != "" {
		resp.Set("state", req.state)
	}
	s.fapi.mu.Lock()
	if deny {
		s.fapi.stats.Denials++
		resp.Set("error", "access_denied")
		resp.Set("error_description", "the user denied the request")
	} else {
		code := randString(32)
		r2 := *req
		r2.user = user
		s.fapi.codes[code] = &fapiCode{req: &r2, exp: now.Add(fapiCodeTTL)}
		s.fapi.stats.Authorizations++
		resp.Set("code", code)
	}
	s.fapi.mu.Unlock()
	target, _ := url.Parse(req.redirectURI) // registered, so it parses
	q2 := target.Query()
	for k, v := range resp {
		q2[k] = v
	}
	target.RawQuery = q2.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target.String(), http.StatusSeeOther)
}
