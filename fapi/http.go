package fapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxBodySize caps how much of any answer (metadata, JWK Set, PAR or token
// response) is read.
const MaxBodySize = 1 << 20

// answer is an HTTP response read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// roundTrip sends req with hc and reads at most MaxBodySize of the answer.
// A nil hc is refused rather than replaced by http.DefaultClient, which
// would bypass the caller's egress policy. secrets are cut out of any
// transport error.
func roundTrip(hc *http.Client, req *http.Request, step string, secrets []string) (*answer, error) {
	if hc == nil {
		return nil, &Error{Step: step, Msg: "no HTTP client given"}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &Error{Step: step, Msg: "request failed: " + cleanText(err.Error(), secrets), err: transportCause(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return nil, &Error{Step: step, Status: resp.StatusCode, Msg: "reading the answer failed: " + cleanText(err.Error(), secrets), err: transportCause(err)}
	}
	if len(body) > MaxBodySize {
		return nil, &Error{Step: step, Status: resp.StatusCode, Msg: fmt.Sprintf("answer is larger than %d bytes", MaxBodySize)}
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// transportCause is what Unwrap exposes of a transport failure: the
// error inside a *url.Error (whose text names the URL), so a caller
// can test for context errors or an egress refusal.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// get fetches a JSON document.
func get(ctx context.Context, hc *http.Client, step, target string) (*answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, &Error{Step: step, Msg: "invalid URL"}
	}
	req.Header.Set("Accept", "application/json")
	return roundTrip(hc, req, step, nil)
}

// serverError is RFC 6749 section 5.2's error answer.
type serverError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// rejection turns a non-2xx answer into an *Error with the server's error
// code and description, with secrets cut out. The body itself is never
// quoted: a server may echo what it was sent.
func rejection(step string, a *answer, secrets []string) *Error {
	e := &Error{Step: step, Status: a.status, Msg: "refused"}
	var se serverError
	if json.Unmarshal(a.body, &se) == nil && se.Error != "" {
		e.Code = cleanCode(se.Error, secrets)
		e.Description = cleanText(se.Description, secrets)
		return e
	}
	if ct := a.header.Get("Content-Type"); ct != "" {
		e.Msg = "refused without an OAuth error (content type " + cleanText(strings.SplitN(ct, ";", 2)[0], secrets) + ")"
	} else {
		e.Msg = "refused without an OAuth error"
	}
	return e
}

// ok2xx reports a success status.
func ok2xx(status int) bool { return status >= 200 && status <= 299 }
