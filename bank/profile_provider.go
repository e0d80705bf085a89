package bank

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// profileProvider runs a Profile. It is a Provider like any other.
type profileProvider struct {
	p         *Profile
	fields    []Field
	needsBase bool
	digest    string // hash of the profile, part of a config's CacheKey
}

// NewProfileProvider makes a Provider of a valid profile named name.
func NewProfileProvider(name string, p *Profile) (Provider, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	cp := *p
	cp.Name = name
	doc, err := json.Marshal(&cp)
	if err != nil {
		return nil, profileErr("", "cannot encode profile: %v", err)
	}
	sum := sha256.Sum256(doc)
	pp := &profileProvider{p: &cp, digest: hex.EncodeToString(sum[:16])}
	for _, f := range cp.Fields {
		pp.fields = append(pp.fields, Field{Name: f.Name, Description: f.Description, Required: f.Required,
			Secret: f.Secret, Default: f.Default})
	}
	for _, steps := range [][]Step{cp.Steps, refreshSteps(&cp)} {
		for _, s := range steps {
			pp.needsBase = pp.needsBase || s.Path != ""
		}
	}
	return pp, nil
}

func refreshSteps(p *Profile) []Step {
	if p.Refresh == nil {
		return nil
	}
	return p.Refresh.Steps
}

func (pp *profileProvider) Name() string           { return pp.p.Name }
func (pp *profileProvider) DefaultBaseURL() string { return pp.p.BaseURL }
func (pp *profileProvider) Fields() []Field        { return pp.fields }

// validate: a profile whose steps all have absolute URLs needs no base_url.
func (pp *profileProvider) validate(c *Config) error {
	if pp.needsBase && c.BaseURL == "" && pp.p.BaseURL == "" {
		return fieldErr(FieldBaseURL, "is required for provider %s (it has no public default)", c.Provider)
	}
	return nil
}

// fetch refreshes while the refresh token is good, when the profile has a
// refresh request; if the bank refuses the refresh token it runs the login
// steps, once (unless the profile says on_rejected: fail).
func (pp *profileProvider) fetch(ctx context.Context, c *Client, prev *Token) (*Token, error) {
	if r := pp.p.Refresh; r != nil && prev.CanRefreshAt(c.now()) {
		tok, err := pp.grant(ctx, c, r.Steps, prev.RefreshToken)
		if err == nil {
			return tok, nil
		}
		ue, ok := err.(*UpstreamError)
		if !ok || !ue.Rejected() || r.OnRejected == "fail" {
			return nil, err
		}
		c.logger.Info("refresh token rejected, logging in again", "provider", pp.Name(), "status", ue.Status)
	}
	return pp.grant(ctx, c, pp.p.Steps, "")
}

// grant runs one grant: the login steps or the refresh steps. It is the
// unit to retry on a transient failure, never a single step (İşbank's
// code is single-use, so a retry must start with a new one).
func (pp *profileProvider) grant(ctx context.Context, c *Client, steps []Step, refreshToken string) (*Token, error) {
	return c.withRetries(ctx, func(ctx context.Context) (*Token, error) { return pp.run(ctx, c, steps, refreshToken) })
}

// DefaultLimits is the request budget the profile declares (none when it
// declares none).
func (pp *profileProvider) DefaultLimits() Limits {
	if l := pp.p.Limits; l != nil {
		return Limits{PerMinute: l.PerMinute, PerDay: l.PerDay}
	}
	return Limits{}
}

// run sends steps in order; values extracted from one answer feed the
// next; the last answer holds the token.
func (pp *profileProvider) run(ctx context.Context, c *Client, steps []Step, refreshToken string) (*Token, error) {
	// All steps must fit the request budget: a first step's answer (İşbank's
	// single-use code) without the budget to use it would be wasted.
	if c.budget != nil && len(steps) > 1 {
		if err := c.budget.room(pp.Name(), c.now(), len(steps)); err != nil {
			return nil, err
		}
	}
	values := map[string]map[string]string{}
	// fail hides from a failed step's error what the fetch has carried so
	// far and what the failed answer itself would have handed on.
	fail := func(err error, s Step, a *answer) error {
		secret := []string{refreshToken}
		for _, vs := range values {
			for _, v := range vs {
				secret = append(secret, v)
			}
		}
		if a != nil {
			if vs, xerr := pp.extract(c, s, a); xerr == nil {
				for _, v := range vs {
					secret = append(secret, v)
				}
			}
		}
		return redactError(err, secret...)
	}
	for i, s := range steps {
		rc := &renderContext{cfg: c.cfg, steps: values, refreshToken: refreshToken, now: c.now()}
		start := c.now()
		a, err := pp.send(ctx, c, s, rc, i == len(steps)-1)
		if err != nil {
			return nil, err
		}
		if err := pp.checkSuccess(c, s, a); err != nil {
			return nil, fail(err, s, a)
		}
		if i == len(steps)-1 {
			tok, err := pp.parseToken(c, s.Name, a, start)
			if err != nil {
				return nil, fail(err, s, nil)
			}
			return tok, nil
		}
		if values[s.Name], err = pp.extract(c, s, a); err != nil {
			return nil, fail(err, s, nil)
		}
	}
	panic("unreachable: a profile has at least one step")
}

// send renders and sends one step. The last step, whose answer holds the
// token, carries a DPoP proof when the config names a dpop_key, and is
// rendered (a fresh client assertion) and sent once more with the bank's
// nonce when the bank answers use_dpop_nonce (RFC 9449 section 8).
func (pp *profileProvider) send(ctx context.Context, c *Client, s Step, rc *renderContext, last bool) (*answer, error) {
	for try := 0; ; try++ {
		x, err := pp.exchange(c, s, rc)
		if err == nil && last {
			if x, err = c.withDPoP(x); err != nil {
				err = fmt.Errorf("cannot sign DPoP proof with dpop_key: %w", err)
			}
		}
		if err != nil {
			return nil, &UpstreamError{Provider: pp.Name(), Step: s.Name, Message: "cannot build request: " + c.scrub(err.Error())}
		}
		a, err := c.do(ctx, x)
		if err != nil || !last || !c.noteDPoPNonce(a) || try == 1 {
			return a, err
		}
	}
}

// exchange renders one step into a request.
func (pp *profileProvider) exchange(c *Client, s Step, rc *renderContext) (exchange, error) {
	x := exchange{step: s.Name, method: s.Method, header: make(map[string][]string, len(s.Headers)+2)}
	var err error
	if s.URL != "" {
		if x.url, err = rc.renderStepURL(s.URL); err != nil { // profile_url.go
			return x, err
		}
		if err := validateEndpointURL("url", x.url, true); err != nil {
			return x, fmt.Errorf("step url: %s", err.(*FieldError).Message)
		}
	} else if x.path, err = rc.render(s.Path, url.PathEscape); err != nil {
		return x, err
	}
	if len(s.Query) > 0 {
		q, err := renderPairs(rc, s.Query, url.QueryEscape)
		if err != nil {
			return x, err
		}
		sep := "?"
		if strings.Contains(x.path+x.url, "?") {
			sep = "&"
		}
		if q != "" {
			if x.url != "" {
				x.url += sep + q
			} else {
				x.path += sep + q
			}
		}
	}
	for _, kv := range s.Headers {
		v, err := rc.render(kv.Value, nil)
		if err != nil {
			return x, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return x, fmt.Errorf("header %s: value holds a line break", kv.Key)
		}
		if v != "" {
			x.header[kv.Key] = []string{v} // spelled exactly as the profile says
		}
	}
	if b := s.Basic; b != nil {
		if x.user, err = rc.render(b.Username, nil); err != nil {
			return x, err
		}
		if x.pass, err = rc.render(b.Password, nil); err != nil {
			return x, err
		}
		if b.Encoding == "rfc6749" {
			x.user, x.pass = url.QueryEscape(x.user), url.QueryEscape(x.pass)
		}
		x.basic = true
	}
	if b := s.Body; b != nil && b.Type != "none" {
		var ct string
		switch b.Type {
		case "form":
			form, err := renderPairs(rc, stringsOf(b.Fields), url.QueryEscape)
			if err != nil {
				return x, err
			}
			if s.Assertion != nil {
				assertion, err := pp.assertion(c, s, rc, x)
				if err != nil {
					return x, err
				}
				if form != "" {
					form += "&"
				}
				form += "client_assertion_type=" + url.QueryEscape(ClientAssertionType) + "&client_assertion=" + url.QueryEscape(assertion)
				rc.sensitive = append(rc.sensitive, assertion)
			}
			x.body, ct = []byte(form), "application/x-www-form-urlencoded"
		case "json":
			if x.body, err = renderJSON(rc, b.Fields); err != nil {
				return x, err
			}
			ct = "application/json"
		}
		if b.ContentType != "" {
			ct = b.ContentType
		}
		if !hasHeader(x.header, "Content-Type") {
			x.header["Content-Type"] = []string{ct}
		}
	}
	x.sensitive = rc.sensitive
	return x, nil
}

// assertion signs a step's client assertion. The default audience is the
// step's URL without its query.
func (pp *profileProvider) assertion(c *Client, s Step, rc *renderContext, x exchange) (string, error) {
	a := s.Assertion
	var vals [4]string
	for i, text := range []string{a.ClientID, a.PrivateKey, a.KeyID, a.Audience} {
		v, err := rc.render(text, nil)
		if err != nil {
			return "", err
		}
		vals[i] = v
	}
	target := x.url
	if target == "" {
		target = c.baseURL + x.path
	}
	target, _, _ = strings.Cut(target, "?")
	if k := c.cfg.keys.Signing; k != nil { // signing_key: the key's kid and algorithm
		return keyAssertion(k, vals[0], vals[3], target, rc.now)
	}
	signer, err := makeAssertionSigner(vals[1], a.Alg, vals[2], vals[3])
	if err != nil {
		return "", fmt.Errorf("client assertion: %s", err.(*FieldError).Message)
	}
	return signer.sign(vals[0], target, rc.now)
}

func hasHeader(h map[string][]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// stringsOf reads a form's values, validated to be strings.
func stringsOf(vals OrderedValues) OrderedStrings {
	out := make(OrderedStrings, 0, len(vals))
	for _, kv := range vals {
		var s string
		json.Unmarshal(kv.Value, &s)
		out = append(out, KV[string]{kv.Key, s})
	}
	return out
}

// renderPairs renders key=value pairs in order, leaving out empty values.
func renderPairs(rc *renderContext, pairs OrderedStrings, escape func(string) string) (string, error) {
	var parts []string
	for _, kv := range pairs {
		v, err := rc.render(kv.Value, nil)
		if err != nil {
			return "", err
		}
		if v != "" {
			parts = append(parts, escape(kv.Key)+"="+escape(v))
		}
	}
	return strings.Join(parts, "&"), nil
}

// renderJSON renders a JSON body in order. String values are templates
// (left out when empty); "{{field.oauth_metadata}}" is the object itself.
func renderJSON(rc *renderContext, fields OrderedValues) ([]byte, error) {
	out := make(OrderedValues, 0, len(fields))
	for _, kv := range fields {
		var s string
		if json.Unmarshal(kv.Value, &s) != nil {
			out = append(out, kv)
			continue
		}
		if ref, ok := singleRef(s); ok && ref == "field."+FieldOAuthMetadata {
			if rc.cfg.OAuthMetadata != nil {
				b, err := json.Marshal(rc.cfg.OAuthMetadata)
				if err != nil {
					return nil, fmt.Errorf("cannot encode oauth_metadata")
				}
				out = append(out, KV[json.RawMessage]{kv.Key, b})
			}
			continue
		}
		v, err := rc.render(s, nil)
		if err != nil {
			return nil, err
		}
		if v == "" {
			continue
		}
		b, _ := json.Marshal(v)
		out = append(out, KV[json.RawMessage]{kv.Key, b})
	}
	return out.MarshalJSON()
}

// checkSuccess refuses an answer whose status is not a success status (by
// default 200), or that lacks the required value.
func (pp *profileProvider) checkSuccess(c *Client, s Step, a *answer) error {
	statuses := []string{"200"}
	require := ""
	if s.Success != nil {
		if len(s.Success.Status) > 0 {
			statuses = s.Success.Status
		}
		require = s.Success.Require
	}
	ok := false
	for _, st := range statuses {
		if lo, hi, _ := statusRange(st); a.status >= lo && a.status <= hi {
			ok = true
			break
		}
	}
	if !ok {
		return pp.rejection(c, s.Name, a)
	}
	if require != "" {
		if !present(a.body, require) {
			if rej := pp.rejection(c, s.Name, a); rej.Code != "" || rej.Message != "" {
				return rej
			}
			return &UpstreamError{Provider: pp.Name(), Step: s.Name, Status: a.status, Message: "response has no " + require}
		}
	}
	return nil
}

// extract reads a step's named values; each must be present.
func (pp *profileProvider) extract(c *Client, s Step, a *answer) (map[string]string, error) {
	out := make(map[string]string, len(s.Extract))
	for name, path := range s.Extract {
		v, found := lookupJSON(a.body, path)
		if !found || v == "" {
			if rej := pp.rejection(c, s.Name, a); rej.Code != "" {
				return nil, rej
			}
			return nil, &UpstreamError{Provider: pp.Name(), Step: s.Name, Status: a.status, Message: "response has no " + path}
		}
		out[name] = v
	}
	return out, nil
}

// rejection describes an error answer with the profile's error fields, or
// the usual ones. It starts from Client.rejection so that whatever that
// derives from an answer (status, retry hints) holds for profiles too.
func (pp *profileProvider) rejection(c *Client, step string, a *answer) *UpstreamError {
	rej := c.rejection(step, a)
	if pp.p.Errors != nil {
		code, msg := describeMapped(a.body, a.contentType, pp.p.Errors)
		rej.Code, rej.Message = c.scrub(code), c.scrub(msg)
	}
	return rej
}

// present reports whether path holds a value: not null, false or "".
func present(body []byte, path string) bool {
	doc, err := decodeJSON(body)
	if err != nil {
		return false
	}
	v, ok := walk(doc, path)
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x != ""
	}
	return ok
}

// lookupJSON reads a scalar at path in a JSON body, as text.
func lookupJSON(body []byte, path string) (string, bool) {
	doc, err := decodeJSON(body)
	if err != nil {
		return "", false
	}
	v, ok := walk(doc, path)
	if !ok {
		return "", false
	}
	s, ok := scalarText(v)
	return s, ok
}

func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}
