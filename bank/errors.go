package bank

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// UpstreamError is a failed exchange with a bank. Its text names the provider,
// the step, the HTTP status and the bank's own error code and message; it
// never carries a credential or a token.
type UpstreamError struct {
	Provider string
	Step     string // "code", "token" or "refresh"
	Status   int    // HTTP status; 0 when no answer came
	Code     string // the bank's error code, if it gave one
	Message  string // the bank's error message, or what went wrong
	// Transient marks a failure worth retrying: no answer (connection
	// refused or reset), or HTTP 502/503/504/429.
	Transient bool
	// RetryAt is when the bank asked to be called again (Retry-After or
	// X-RateLimit-Retry-After); zero when it did not say.
	RetryAt time.Time
	// RetryCapped says the bank asked for a longer wait than MaxRetryAfter;
	// RetryAt is then MaxRetryAfter on.
	RetryCapped bool
}

// RetryCapped reports whether err is a bank answer whose Retry-After was
// cut to MaxRetryAfter.
func RetryCapped(err error) bool {
	var ue *UpstreamError
	return errors.As(err, &ue) && ue.RetryCapped
}

func (e *UpstreamError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s request failed", e.Provider, e.Step)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, ": bank code %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if !e.RetryAt.IsZero() {
		fmt.Fprintf(&b, "; the bank asks to retry after %s", e.RetryAt.UTC().Format(time.RFC3339))
		if e.RetryCapped {
			fmt.Fprintf(&b, " (capped: it asked for longer than %s)", MaxRetryAfter)
		}
	}
	return b.String()
}

// Rejected reports whether the bank answered and refused (a 4xx or a
// well-formed error body) as opposed to failing to answer.
func (e *UpstreamError) Rejected() bool { return e.Status >= 400 && e.Status < 500 }

// errorFields lists, in order of preference, the JSON keys banks use for an
// error code and for an error message.
var (
	errorCodeKeys    = []string{"response_code", "error", "code", "httpCode", "errorCode", "status"}
	errorMessageKeys = []string{"response_message", "error_description", "errorMessage", "message", "httpMessage", "moreInformation", "description"}
)

const maxMessageLen = 300

// describeErrorBody pulls the bank's error code and message out of a body,
// raw: callers scrub secrets from them before clean shortens them (a secret
// cut in two by the shortening would no longer be found). Bodies that are
// not JSON objects are summarised, never echoed.
func describeErrorBody(body []byte, contentType string) (code, message string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		switch {
		case len(body) == 0:
			return "", "empty response body"
		case strings.Contains(contentType, "html") || looksLikeHTML(body):
			return "", "non-JSON response (HTML page)"
		default:
			return "", "non-JSON response body"
		}
	}
	code = firstScalar(obj, errorCodeKeys)
	message = firstScalar(obj, errorMessageKeys)
	if detail := scalar(obj["description"]); detail != "" && detail != message {
		message = joinNonEmpty(message, detail)
	}
	return code, message
}

func firstScalar(obj map[string]json.RawMessage, keys []string) string {
	for _, k := range keys {
		if s := scalar(obj[k]); s != "" {
			return s
		}
	}
	return ""
}

// scalar renders a JSON string or number as text; objects, arrays, booleans
// and null give "".
func scalar(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " (" + b + ")"
}

// clean makes bank-supplied text safe to show: printable, single line, bounded.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > maxMessageLen {
		s = string(r[:maxMessageLen]) + "..."
	}
	return s
}

func looksLikeHTML(body []byte) bool {
	head := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 64)])))
	return strings.HasPrefix(head, "<!doctype") || strings.HasPrefix(head, "<html") || strings.HasPrefix(head, "<")
}

// redactError removes values that are secret during one fetch (a refresh
// token, a value carried between steps such as İşbank's authorization code,
// a client assertion, Basic credentials), in every form secretForms knows,
// from the bank-supplied text of an UpstreamError. The config's own
// secrets are scrubbed when the error is made.
func redactError(err error, values ...string) error {
	var ue *UpstreamError
	if errors.As(err, &ue) {
		forms := expandSecrets(values)
		ue.Code, ue.Message = redact(ue.Code, forms), redact(ue.Message, forms)
	}
	return err
}

// cleanError makes an UpstreamError's bank text printable, single line and
// bounded (clean), once every secret is out of it.
func cleanError(err error) error {
	var ue *UpstreamError
	if errors.As(err, &ue) {
		ue.Code, ue.Message = clean(ue.Code), clean(ue.Message)
	}
	return err
}

// redact replaces every occurrence of each secret in s.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
