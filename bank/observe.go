package bank

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Outcomes of one HTTP round trip to the bank, as RequestEvent.Outcome and
// the outcome label of bankauth's request metrics. They classify the HTTP
// answer only: a 2xx whose body is an error (Acceleration Cloud answers
// errors with HTTP 200) is still "2xx"; the fetch as a whole then fails and
// Observer.FetchDone says so.
const (
	Outcome2xx       = "2xx"
	Outcome3xx       = "3xx" // redirects are never followed
	Outcome4xx       = "4xx"
	Outcome5xx       = "5xx"
	OutcomeNoAnswer  = "no_answer" // connection refused, timeout, TLS failure, reset
	OutcomeUnhandled = "other"     // 1xx or an unknown status class
)

// RequestEvent describes one HTTP round trip to the bank. It carries no
// header or body value, so it is safe to log and to keep.
type RequestEvent struct {
	Provider string
	Step     string // "code", "token" or "refresh"
	Method   string
	Status   int // HTTP status; 0 when no answer came
	Latency  time.Duration
	Attempt  int    // 1 for the first try of a step; retries count up
	Outcome  string // one of the Outcome constants
}

// Observer is told what a Client does, for metrics and status. Methods are
// called on the goroutine that talks to the bank, so they must be quick and
// safe for concurrent use.
type Observer interface {
	// BankRequest is called after every HTTP round trip, failed or not.
	BankRequest(RequestEvent)
	// FetchDone is called when Fetch ends, with its error (nil on success).
	// The error is an *UpstreamError or a context error and holds no secret.
	FetchDone(err error)
}

// SetObserver makes o receive the client's events. Call it before the
// client is shared; nil turns observation off.
func (c *Client) SetObserver(o Observer) { c.observer = o }

// outcomeOf classifies an HTTP status; 0 means no answer.
func outcomeOf(status int) string {
	switch {
	case status == 0:
		return OutcomeNoAnswer
	case status >= 200 && status < 300:
		return Outcome2xx
	case status >= 300 && status < 400:
		return Outcome3xx
	case status >= 400 && status < 500:
		return Outcome4xx
	case status >= 500 && status < 600:
		return Outcome5xx
	}
	return OutcomeUnhandled
}

type attemptKey struct{}

// withAttempt marks ctx as attempt n (1-based) of a retried step: the bank
// requests made under it are logged and observed with that attempt number.
// A retry loop calls it around each try.
func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// attemptOf is the exchange's attempt number: its own, else the one ctx
// carries, else 1.
func attemptOf(ctx context.Context, x exchange) int {
	if x.attempt > 0 {
		return x.attempt
	}
	if n, ok := ctx.Value(attemptKey{}).(int); ok && n > 0 {
		return n
	}
	return 1
}

// recordRequest reports one round trip to the observer and the log: debug
// for a 2xx, warn for anything else. failure is the (scrubbed) transport
// error when no answer came. At trace level the request's and answer's
// shapes are logged too: header, query and body field names, never values.
func (c *Client) recordRequest(ctx context.Context, x exchange, status int, latency time.Duration, a *answer, failure string) {
	ev := RequestEvent{Provider: c.provider.Name(), Step: x.step, Method: x.method, Status: status,
		Latency: latency, Attempt: attemptOf(ctx, x), Outcome: outcomeOf(status)}
	if c.observer != nil {
		c.observer.BankRequest(ev)
	}
	// Values are strings and numbers only: an external plugin's log lines
	// travel to Vault as JSON, where a time.Duration would become nanoseconds.
	args := []any{"provider", ev.Provider, "step", ev.Step, "method", ev.Method, "status", ev.Status,
		"latency", ev.Latency.String(), "attempt", ev.Attempt, "outcome", ev.Outcome}
	switch {
	case failure != "":
		c.logger.Warn("bank request failed", append(args, "error", failure)...)
	case ev.Outcome == Outcome2xx:
		c.logger.Debug("bank request", append(args, "bytes", len(a.body))...)
	default:
		c.logger.Warn("bank request answered with an error status", append(args, "bytes", len(a.body))...)
	}
	if c.logger.IsTrace() {
		shape := []any{"provider", ev.Provider, "step", ev.Step, "attempt", ev.Attempt,
			"request_headers", headerNames(x.header, x.basic), "request_query", queryNames(x.path),
			"request_body_fields", bodyFieldNames(x.body, x.header.Get("Content-Type"))}
		if a != nil {
			shape = append(shape, "response_content_type", a.contentType,
				"response_body_fields", bodyFieldNames(a.body, a.contentType))
		}
		c.logger.Trace("bank request shape", shape...)
	}
}

// recordFetch reports the end of a Fetch: debug on success, error on
// failure (warn when the caller gave up).
func (c *Client) recordFetch(tok *Token, err error, elapsed time.Duration) {
	if c.observer != nil {
		c.observer.FetchDone(err)
	}
	switch {
	case err == nil:
		c.logger.Debug("token fetched", "provider", c.provider.Name(), "elapsed", elapsed.String(),
			"lifetime", tok.Lifetime().Round(time.Second).String(), "expires_at", tok.ExpiresAt.UTC().Format(time.RFC3339))
	case isContextError(err):
		c.logger.Warn("token fetch abandoned", "provider", c.provider.Name(), "elapsed", elapsed.String(), "error", err.Error())
	default:
		c.logger.Error("token fetch failed", "provider", c.provider.Name(), "elapsed", elapsed.String(), "error", err.Error())
	}
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// headerNames lists the request's header names, sorted and comma-joined;
// Authorization when Basic auth is set.
func headerNames(h http.Header, basic bool) string {
	out := make([]string, 0, len(h)+1)
	for k := range h {
		out = append(out, k)
	}
	if basic {
		out = append(out, "Authorization")
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// queryNames lists the query parameter names of a request path, sorted and
// comma-joined.
func queryNames(path string) string {
	_, raw, ok := strings.Cut(path, "?")
	if !ok {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "(unparsable)"
	}
	return sortedKeys(q)
}

// bodyFieldNames lists the top-level field names of a JSON object or form
// body, sorted and comma-joined. Other bodies are described by kind only.
func bodyFieldNames(body []byte, contentType string) string {
	if len(body) == 0 {
		return ""
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil && obj != nil {
		return sortedKeys(obj)
	}
	if mt == "application/x-www-form-urlencoded" {
		if q, err := url.ParseQuery(string(body)); err == nil {
			return sortedKeys(q)
		}
	}
	return "(not a JSON object or form)"
}

func sortedKeys[V any](m map[string]V) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
