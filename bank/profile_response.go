package bank

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Default token paths: the OAuth names, and the variants the four seed
// banks use (eTranzact's table says refreshToken, its sample
// refresh_token; İşbank says refresh_token_expires_in).
var (
	defaultAccessToken      = Paths{"access_token"}
	defaultTokenType        = Paths{"token_type"}
	defaultScope            = Paths{"scope"}
	defaultRefreshToken     = Paths{"refresh_token", "refreshToken"}
	defaultExpiresIn        = Duration{Path: Paths{"expires_in"}, Unit: "s"}
	defaultRefreshExpiresIn = Duration{Path: Paths{"refresh_expires_in", "refresh_token_expires_in"}, Unit: "s"}
)

func orPaths(p, def Paths) Paths {
	if len(p) == 0 {
		return def
	}
	return p
}

// parseToken reads the token from the last answer as the profile's token
// mapping says. obtainedAt is when the request was sent, so expiry errs on
// the early side.
func (pp *profileProvider) parseToken(c *Client, step string, a *answer, obtainedAt time.Time) (*Token, error) {
	fail := func(format string, args ...any) error {
		return &UpstreamError{Provider: pp.Name(), Step: step, Status: a.status, Message: fmt.Sprintf(format, args...)}
	}
	doc, err := decodeJSON(a.body)
	obj, isObj := doc.(map[string]any)
	if err != nil || !isObj {
		_, msg := describeErrorBody(a.body, a.contentType)
		msg = c.scrub(msg)
		if msg == "" {
			msg = "response is not a JSON object"
		}
		return nil, fail("%s", msg)
	}
	m := pp.p.Token
	var tok Token
	atPaths := orPaths(m.AccessToken, defaultAccessToken)
	if v, path, ok := first(obj, atPaths); !ok || !isNonEmptyString(v) {
		// Banks that answer errors with HTTP 200 land here.
		if rej := pp.rejection(c, step, a); rej.Code != "" || rej.Message != "" {
			return nil, rej
		}
		if path == "" {
			path = atPaths[0]
		}
		return nil, fail("response has no %s", path)
	} else {
		tok.AccessToken = v.(string)
	}
	for _, f := range []struct {
		paths Paths
		dst   *string
	}{{orPaths(m.TokenType, defaultTokenType), &tok.TokenType}, {orPaths(m.Scope, defaultScope), &tok.Scope}} {
		if v, path, ok := first(obj, f.paths); ok {
			s, isStr := v.(string)
			if !isStr {
				return nil, fail("%s is not a string", path)
			}
			*f.dst = s
		}
	}
	if tok.TokenType == "" {
		tok.TokenType = "bearer"
	}
	tok.ObtainedAt = obtainedAt
	exp, found, err := pp.expiry(obj, obtainedAt)
	switch {
	case err != nil:
		return nil, fail("%v", err)
	case found:
		tok.ExpiresAt = exp
	case m.NoJWTFallback && c.cfg.DefaultLifetime > 0:
		tok.ExpiresAt = obtainedAt.Add(c.cfg.DefaultLifetime)
	case m.NoJWTFallback:
		return nil, fail("response has no %s", strings.Join(orPaths(pathsOf(m.ExpiresIn), defaultExpiresIn.Path), " or "))
	default:
		exp, ok := jwtExpiry(tok.AccessToken)
		if !ok && c.cfg.DefaultLifetime > 0 {
			tok.ExpiresAt = obtainedAt.Add(c.cfg.DefaultLifetime)
			break
		}
		if !ok {
			return nil, fail("response has no %s and the access token carries no expiry (set default_lifetime to assume one)", orPaths(pathsOf(m.ExpiresIn), defaultExpiresIn.Path)[0])
		}
		if !exp.After(obtainedAt) || exp.Sub(obtainedAt) > MaxLifetime {
			return nil, fail("access token's exp claim is out of range")
		}
		tok.ExpiresAt = exp
	}
	for _, path := range orPaths(m.RefreshToken, defaultRefreshToken) {
		v, ok := walk(obj, path)
		if !ok {
			continue
		}
		s, isStr := v.(string)
		if !isStr {
			return nil, fail("%s is not a string", path)
		}
		if s != "" {
			tok.RefreshToken = s
			break
		}
	}
	rd := defaultRefreshExpiresIn
	if m.RefreshExpiresIn != nil {
		rd = *m.RefreshExpiresIn
	}
	for _, path := range rd.Path {
		life, ok, err := lifetime(obj, path, rd)
		if err != nil {
			return nil, fail("%s: %v", path, err)
		}
		if ok {
			tok.RefreshExpiresAt = obtainedAt.Add(life)
			break
		}
	}
	return &tok, nil
}

func pathsOf(d *Duration) Paths {
	if d == nil {
		return nil
	}
	return d.Path
}

// expiry reads expires_at (absolute) or expires_in (relative).
func (pp *profileProvider) expiry(obj map[string]any, obtainedAt time.Time) (time.Time, bool, error) {
	m := pp.p.Token
	if at := m.ExpiresAt; at != nil {
		for _, path := range at.Path {
			v, ok := walk(obj, path)
			if !ok {
				continue
			}
			t, err := instant(v, at.Format)
			if err != nil {
				return time.Time{}, false, fmt.Errorf("%s: %v", path, err)
			}
			if !t.After(obtainedAt) || t.Sub(obtainedAt) > MaxLifetime {
				return time.Time{}, false, fmt.Errorf("%s: expiry time is in the past or more than a year away", path)
			}
			return t, true, nil
		}
	}
	d := defaultExpiresIn
	if m.ExpiresIn != nil {
		d = *m.ExpiresIn
	}
	for _, path := range d.Path {
		life, ok, err := lifetime(obj, path, d)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s: %v", path, err)
		}
		if ok {
			return obtainedAt.Add(life), true, nil
		}
	}
	return time.Time{}, false, nil
}

// lifetime reads a positive number of seconds or milliseconds at path.
func lifetime(obj map[string]any, path string, d Duration) (time.Duration, bool, error) {
	v, ok := walk(obj, path)
	if !ok {
		return 0, false, nil
	}
	unit, unitName := time.Second, "seconds"
	if d.Unit == "ms" {
		unit, unitName = time.Millisecond, "milliseconds"
	}
	var n float64
	var err error
	switch x := v.(type) {
	case json.Number:
		n, err = x.Float64()
	case string:
		if !d.AcceptString {
			err = fmt.Errorf("string")
		} else {
			n, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
		}
	default:
		err = fmt.Errorf("not a number")
	}
	if err != nil {
		return 0, false, fmt.Errorf("must be a number of %s", unitName)
	}
	max := float64(MaxLifetime / unit)
	if !(n > 0 && n <= max) {
		return 0, false, fmt.Errorf("must be a positive number of %s up to %d", unitName, int64(max))
	}
	return time.Duration(n * float64(unit)), true, nil
}

// instant reads an absolute time: unix seconds or milliseconds (number or
// numeric string), or RFC 3339.
func instant(v any, format string) (time.Time, error) {
	if format == "rfc3339" {
		s, ok := v.(string)
		if !ok {
			return time.Time{}, fmt.Errorf("must be an RFC 3339 time")
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("must be an RFC 3339 time")
		}
		return t, nil
	}
	var n float64
	var err error
	switch x := v.(type) {
	case json.Number:
		n, err = x.Float64()
	case string:
		n, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
	default:
		err = fmt.Errorf("not a number")
	}
	if err != nil || n <= 0 || n > 1e15 {
		return time.Time{}, fmt.Errorf("must be a %s timestamp", format)
	}
	if format == "unix_ms" {
		return time.UnixMilli(int64(n)), nil
	}
	return time.Unix(int64(n), 0), nil
}

// walk follows a dotted path through objects (and arrays, by index).
// null counts as absent.
func walk(doc any, path string) (any, bool) {
	cur := doc
	for _, key := range strings.Split(path, ".") {
		switch node := cur.(type) {
		case map[string]any:
			v, ok := node[key]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			cur = node[i]
		default:
			return nil, false
		}
	}
	return cur, cur != nil
}

// first returns the value at the first path present.
func first(obj map[string]any, paths Paths) (any, string, bool) {
	for _, p := range paths {
		if v, ok := walk(obj, p); ok {
			return v, p, true
		}
	}
	return nil, "", false
}

func isNonEmptyString(v any) bool {
	s, ok := v.(string)
	return ok && s != ""
}

// scalarText renders a string or number as text.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// describeMapped pulls the bank's error code and message, raw (see
// describeErrorBody), from the paths a profile names; bodies that are not
// JSON are summarised, never echoed.
func describeMapped(body []byte, contentType string, m *ErrorMapping) (code, message string) {
	doc, err := decodeJSON(body)
	obj, ok := doc.(map[string]any)
	if err != nil || !ok {
		return describeErrorBody(body, contentType)
	}
	text := func(paths Paths) string {
		for _, p := range paths {
			if v, ok := walk(obj, p); ok {
				if s, ok := scalarText(v); ok && s != "" {
					return s
				}
			}
		}
		return ""
	}
	code, message = text(m.Code), text(m.Message)
	if detail := text(m.Detail); detail != "" && detail != message {
		message = joinNonEmpty(message, detail)
	}
	return code, message
}
