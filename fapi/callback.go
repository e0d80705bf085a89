package fapi

import (
	"net/url"
	"time"
)

// CallbackParams are the authorization response's parameters (RFC 6749
// section 4.1.2, RFC 9207).
type CallbackParams struct {
	Code             string
	State            string
	Iss              string
	Error            string
	ErrorDescription string
}

// Checks a CallbackError names.
const (
	CheckMalformed = "malformed" // the callback URL or its parameters
	CheckState     = "state"     // not the attempt's state
	CheckIss       = "iss"       // missing or not the issuer (RFC 9207)
	CheckExpired   = "expired"   // the attempt's time is up
	CheckCode      = "code"      // no code in a success response
)

// CallbackError is a callback that fails a check; Check names which.
type CallbackError struct {
	Check string
	Msg   string
}

// Error implements error.
func (e *CallbackError) Error() string { return "callback: " + e.Check + ": " + e.Msg }

// Denial is an authorization error response (RFC 6749 section 4.1.2.1):
// the user or the server refused, e.g. access_denied.
type Denial struct {
	Code        string
	Description string
}

// Error implements error.
func (e *Denial) Error() string {
	s := "callback: the authorization server answered error=" + e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// ParseCallbackURL reads the parameters of the redirect the app received.
// A parameter given twice, a JARM response, or a URL with neither code nor
// error is a *CallbackError with Check "malformed".
func ParseCallbackURL(raw string) (CallbackParams, error) {
	bad := func(msg string) (CallbackParams, error) {
		return CallbackParams{}, &CallbackError{Check: CheckMalformed, Msg: msg}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("callback_url is not a URL")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("the callback URL's query cannot be parsed")
	}
	for _, name := range []string{"code", "state", "iss", "error", "error_description"} {
		if len(q[name]) > 1 {
			return bad("parameter " + name + " appears more than once")
		}
	}
	if q.Has("response") {
		return bad("a JWT-secured (JARM) response is not supported")
	}
	p := CallbackParams{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss"),
		Error: q.Get("error"), ErrorDescription: q.Get("error_description")}
	if p.Code == "" && p.Error == "" {
		return bad("the callback URL has neither code nor error in its query")
	}
	return p, nil
}

// RequireIss says whether a callback must carry iss: in FAPI 2.0 mode, or
// when the server advertises authorization_response_iss_parameter_supported.
func RequireIss(meta *Metadata, fapi2 bool) bool {
	return fapi2 || (meta != nil && meta.AuthorizationResponseIssParameterSupported)
}

// CheckCallback checks a callback against the attempt, in this order:
// state (constant time), iss (equal to issuer; required when requireIss,
// and checked whenever present, RFC 9207 section 2.4), the attempt's expiry
// at now; then an error response becomes a *Denial, and a success must
// carry a code, which is returned. Failed checks are *CallbackError.
func (a *Attempt) CheckCallback(p CallbackParams, issuer string, requireIss bool, now time.Time) (string, error) {
	if !StateEqual(p.State, a.State) {
		return "", &CallbackError{Check: CheckState, Msg: "state is not the attempt's"}
	}
	switch {
	case p.Iss == "" && requireIss:
		return "", &CallbackError{Check: CheckIss, Msg: "the response has no iss, which this authorization server must send"}
	case p.Iss != "" && p.Iss != issuer:
		return "", &CallbackError{Check: CheckIss, Msg: "iss is not the configured issuer " + issuer}
	}
	if !now.Before(a.ExpiresAt) {
		return "", &CallbackError{Check: CheckExpired, Msg: "the attempt expired at " + a.ExpiresAt.UTC().Format(time.RFC3339)}
	}
	secrets := []string{a.State, a.Nonce, a.Verifier, p.Code}
	if p.Error != "" {
		return "", &Denial{Code: cleanCode(p.Error, secrets), Description: cleanText(p.ErrorDescription, secrets)}
	}
	if p.Code == "" {
		return "", &CallbackError{Check: CheckCode, Msg: "the response has no code"}
	}
	return p.Code, nil
}
