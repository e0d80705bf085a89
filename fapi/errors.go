package fapi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// Steps an Error can name.
const (
	StepDiscovery = "discovery"
	StepJWKS      = "jwks"
	StepPAR       = "par"
	StepToken     = "token"
	StepRefresh   = "refresh"
	StepRevoke    = "revoke"
)

// Error is a failed exchange with the authorization server: the step, the
// HTTP status (0 when there was no answer), the server's error code and
// description, and what went wrong. It never holds a secret: whatever the
// request carried is cut out of the server's text.
type Error struct {
	Step        string
	Status      int
	Code        string // the server's "error", e.g. invalid_grant
	Description string // the server's "error_description", scrubbed and shortened
	Msg         string
	err         error // the transport failure, if any
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Step)
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Code != "" {
		b.WriteString(": error=")
		b.WriteString(e.Code)
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// Unwrap returns the transport failure (a context error, an egress
// refusal), if any.
func (e *Error) Unwrap() error { return e.err }

// IsInvalidGrant reports whether err is the server's invalid_grant: the
// code, or the refresh token, is not (or no longer) good, and the user must
// authorize again.
func IsInvalidGrant(err error) bool { return HasCode(err, "invalid_grant") }

// HasCode reports whether err is an *Error carrying the server's error code.
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// redacted replaces a secret in error text.
const redacted = "[redacted]"

// minSecretLen is the shortest value scrub cuts out: shorter ones would
// mangle ordinary words and are no secret worth the name.
const minSecretLen = 6

// scrub removes every secret from s, as it is and form-encoded (a server
// may echo the form it was sent).
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= minSecretLen {
			s = strings.ReplaceAll(s, v, redacted)
			if q := url.QueryEscape(v); q != v {
				s = strings.ReplaceAll(s, q, redacted)
			}
		}
	}
	return s
}

// maxDescription caps the server's error_description in an error.
const maxDescription = 300

// cleanText makes server text fit for an error: secrets cut out, control
// characters dropped, at most maxDescription runes.
func cleanText(s string, secrets []string) string {
	s = scrub(s, secrets)
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxDescription {
			b.WriteString("...")
			break
		}
		if unicode.IsControl(r) {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// cleanCode keeps an error code that is RFC 6749's error syntax
// (%x20-21 / %x23-5B / %x5D-7E) and short; anything else becomes
// "invalid_error_code" so no server can smuggle text through it.
func cleanCode(s string, secrets []string) string {
	if s == "" {
		return ""
	}
	if len(s) > 64 || scrub(s, secrets) != s {
		return "invalid_error_code"
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return "invalid_error_code"
		}
	}
	return s
}
