package bank

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// MaxBodySize caps how much of a bank's answer is read.
const MaxBodySize = 1 << 20

// Client fetches tokens for one config. It is safe for concurrent use and
// keeps its connections alive between fetches.
type Client struct {
	cfg      *Config
	provider Provider
	http     *http.Client
	baseURL  string
	secrets  []string
	logger   hclog.Logger
	now      func() time.Time
	observer Observer // see SetObserver; nil when nobody watches
	budget   *Budget  // nil: no request budget
	dpop     dpopState
	egress   *Egress
}

// Option is an optional setting of NewClient.
type Option func(*Client)

// WithEgress makes the client's requests follow e's policy. Without it a
// client follows the production default (EgressPolicy{}): no loopback,
// link-local or unspecified address, no plain http.
func WithEgress(e *Egress) Option {
	return func(c *Client) {
		if e != nil {
			c.egress = e
		}
	}
}

// NewClient builds a Client for a valid config. The logger may be nil.
func NewClient(cfg *Config, logger hclog.Logger, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, _ := cfg.Lookup()
	c := &Client{egress: strictEgress}
	for _, o := range opts {
		o(c)
	}
	transport, err := acquireTransport(cfg, c.egress) // shared per egress, CA and client certificate; see transport.go
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	c.cfg, c.provider = cfg, p
	c.http = &http.Client{
		Transport: transport,
		Timeout:   cfg.EffectiveTimeout(),
		// Never follow redirects: the credential headers would travel along.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.baseURL = strings.TrimRight(cfg.EffectiveBaseURL(), "/")
	c.secrets = expandSecrets(cfg.SecretValues()) // every form they may come back in: scrub.go
	c.logger = logger
	c.now = time.Now
	return c, nil
}

// SetBudget makes every bank request of the client take from b (nil: no
// budget). Call it before the client's first Fetch.
func (c *Client) SetBudget(b *Budget) {
	if b != nil {
		b.SetLimits(c.cfg.EffectiveLimits())
	}
	c.budget = b
}

// Budget returns the request budget set by SetBudget, or nil.
func (c *Client) Budget() *Budget { return c.budget }

// SetClock makes the client tell time with now (token issue and expiry
// times, the request budget's windows, Retry-After); default time.Now.
// Call it before the client's first Fetch.
func (c *Client) SetClock(now func() time.Time) { c.now = now }

// Config returns the config the client was built from.
func (c *Client) Config() *Config { return c.cfg }

// Close releases the client's share of its HTTP transport; the last client
// of a transport closes its idle connections. Call it once.
func (c *Client) Close() { releaseTransport(c.cfg, c.egress) }

// Fetch obtains a new token from the bank, using prev's refresh token where
// the provider supports it. The whole exchange is bounded by the config's
// timeout and by ctx. Errors are *UpstreamError (or ctx errors) and never
// contain a secret.
func (c *Client) Fetch(ctx context.Context, prev *Token) (*Token, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.EffectiveTimeout())
	defer cancel()
	start := time.Now()
	ctx, sent := withSentSecrets(ctx)
	tok, err := c.provider.fetch(ctx, c, prev)
	if err != nil {
		// A bank that echoes what it was sent: the token or refresh token,
		// Basic credentials, rendered headers, signed assertions. Bank text
		// is shortened only after that, so no secret is cut in two and
		// left half-shown.
		values := sent.list()
		if prev != nil {
			values = append(values, prev.AccessToken, prev.RefreshToken)
		}
		err = cleanError(redactError(err, values...))
	}
	c.recordFetch(tok, err, time.Since(start))
	if err != nil {
		return nil, err
	}
	return c.stamp(tok), nil
}

// exchange is one HTTP round trip to the bank.
type exchange struct {
	step   string
	method string
	path   string // appended to the base URL, may hold a query
	url    string // an absolute URL used instead of base URL + path
	header http.Header
	body   []byte
	user   string // Basic auth, raw (not URL-encoded), when pass or user is set
	pass   string
	basic  bool
	// sensitive are values rendered from secrets that are not config
	// values as stored (header values, assertions): scrubbed from errors.
	sensitive []string
	// attempt numbers retries of one step, for logs and observers only; 0
	// takes it from the context (withAttempt), else 1.
	attempt int
}

// answer is what the bank said.
type answer struct {
	status      int
	contentType string
	body        []byte
	header      http.Header
}

// do sends one request and reads a bounded answer. Only transport failures
// return an error; any HTTP status is an answer.
func (c *Client) do(ctx context.Context, x exchange) (*answer, error) {
	var body io.Reader
	if x.body != nil {
		body = bytes.NewReader(x.body)
	}
	target := c.baseURL + x.path
	if x.url != "" {
		target = x.url
	}
	req, err := http.NewRequestWithContext(ctx, x.method, target, body)
	if err != nil {
		return nil, &UpstreamError{Provider: c.provider.Name(), Step: x.step, Message: "cannot build request: " + c.scrub(err.Error())}
	}
	for k, vs := range x.header {
		req.Header[k] = vs
	}
	if x.basic {
		req.SetBasicAuth(x.user, x.pass)
		noteSent(ctx, basicForms(x.user, x.pass)...)
	}
	noteSent(ctx, x.sensitive...)
	req.Header.Set("User-Agent", "vault-plugin-secrets-bankauth")
	if err := c.egress.checkURL(req.URL); err != nil {
		return nil, &UpstreamError{Provider: c.provider.Name(), Step: x.step, Message: err.Error()}
	}
	if c.budget != nil {
		if err := c.budget.take(c.provider.Name(), c.now()); err != nil {
			return nil, err
		}
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if ee, ok := asEgressError(err); ok {
		c.recordRequest(ctx, x, 0, time.Since(start), nil, ee.Error())
		return nil, &UpstreamError{Provider: c.provider.Name(), Step: x.step, Message: ee.Error()}
	}
	if err != nil {
		c.recordRequest(ctx, x, 0, time.Since(start), nil, c.transportError(err))
		// No answer: worth another try, unless the deadline is what ended it.
		return nil, &UpstreamError{Provider: c.provider.Name(), Step: x.step, Message: c.transportError(err),
			Transient: ctx.Err() == nil}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	c.recordRequest(ctx, x, resp.StatusCode, time.Since(start),
		&answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: data}, "")
	if err != nil {
		return nil, &UpstreamError{Provider: c.provider.Name(), Step: x.step, Status: resp.StatusCode,
			Message: "reading response: " + c.transportError(err)}
	}
	if len(data) > MaxBodySize {
		return nil, &UpstreamError{Provider: c.provider.Name(), Step: x.step, Status: resp.StatusCode,
			Message: fmt.Sprintf("response body larger than %d bytes", MaxBodySize)}
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, &UpstreamError{Provider: c.provider.Name(), Step: x.step, Status: resp.StatusCode,
			Message: "redirect not followed (check base_url)"}
	}
	return &answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: data, header: resp.Header}, nil
}

// transportError describes a failure to talk to the bank without echoing
// the request URL's query or any secret.
func (c *Client) transportError(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "request cancelled"
	}
	var uerr interface{ Unwrap() error }
	if errors.As(err, &uerr) && uerr.Unwrap() != nil {
		err = uerr.Unwrap()
	}
	return c.scrub(err.Error())
}

// rejection turns an error answer into an UpstreamError.
func (c *Client) rejection(step string, a *answer) *UpstreamError {
	code, msg := describeErrorBody(a.body, a.contentType)
	// Acceleration Cloud reports a gateway failure as HTTP 200 with the
	// status in its body's code.
	status := a.status
	if status < 300 {
		if n, err := strconv.Atoi(strings.TrimSpace(code)); err == nil {
			status = n
		}
	}
	e := &UpstreamError{Provider: c.provider.Name(), Step: step, Status: a.status,
		Code: c.scrub(code), Message: c.scrub(msg), Transient: transientStatus(status)}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if wait, capped, ok := retryAfter(a.header, c.now()); ok {
			e.RetryAt, e.RetryCapped = c.now().Add(wait), capped
		}
	}
	return e
}

func (c *Client) scrub(s string) string { return redact(s, c.secrets) }

// headers builds a header set from name/value pairs, keeping each name's
// spelling as given (banks' gateways are not all case-insensitive).
func headers(kv ...string) http.Header {
	h := make(http.Header, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = []string{kv[i+1]}
	}
	return h
}
