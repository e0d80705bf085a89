package bank

import (
	"net/netip"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// A profile step's url must name its scheme and host literally: a field
// value spliced into the host (https://{{field.region}}.bank.example with
// region=attacker.example/x?) would send the request, and its secrets, to
// a host of the config writer's choosing. A host configs choose comes from
// base_url, which is validated as a URL of its own; field values go only
// into the path, query, headers and body, escaped for where they go.

// splitStepURL cuts a step url into its origin (scheme://host[:port]) and
// the rest (path, query), or reports that it has no literal origin.
func splitStepURL(text string) (origin, rest string, ok bool) {
	i := strings.Index(text, "://")
	if i <= 0 {
		return "", "", false
	}
	end := len(text)
	if j := strings.IndexAny(text[i+3:], "/?#"); j >= 0 {
		end = i + 3 + j
	}
	origin, rest = text[:end], text[end:]
	if strings.Contains(origin, "{{") || strings.Contains(origin, "}}") {
		return "", "", false
	}
	return origin, rest, true
}

// validateStepURL checks a step url on write: a literal https origin (http
// only for loopback), no user info, no fragment, no link-local, unspecified
// or multicast address.
func validateStepURL(where, text string) error {
	origin, rest, ok := splitStepURL(text)
	if !ok {
		return profileErr(where, "the scheme and host must be literal, like https://auth.bank.example/token: field values may go only into the path, query, headers and body (for a host each config sets, use path and base_url)")
	}
	if strings.Contains(rest, "#") {
		return profileErr(where, "must not contain a fragment")
	}
	if err := validateEndpointURL("url", origin, false); err != nil {
		return profileErr(where, "%s", err.(*FieldError).Message)
	}
	return nil
}

// renderStepURL renders a validated step url: the origin as written, field
// values path-escaped in the path and query-escaped in the query.
func (rc *renderContext) renderStepURL(text string) (string, error) {
	origin, rest, ok := splitStepURL(text)
	if !ok {
		return "", profileErr("url", "the scheme and host must be literal")
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	p, err := rc.render(path, url.PathEscape)
	if err != nil {
		return "", err
	}
	if !hasQuery {
		return origin + p, nil
	}
	q, err := rc.render(query, url.QueryEscape)
	if err != nil {
		return "", err
	}
	return origin + p + "?" + q, nil
}

// unroutableHost reports why a literal IP host can never be a bank:
// link-local (cloud metadata services), unspecified or multicast; "" for
// names and other addresses (the egress policy checks those when dialling).
func unroutableHost(host string) string {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return ""
	}
	a = a.Unmap()
	switch {
	case a.IsLinkLocalUnicast():
		return "a link-local address (cloud metadata services live there)"
	case a.IsUnspecified() || (a.Is4() && a.As4()[0] == 0):
		return "an unspecified address"
	case a.IsMulticast():
		return "a multicast address"
	}
	return ""
}

// withPlaceholders is text with each template reference replaced by a
// plain value, to check what the profile itself writes (found by
// FuzzProfile: a literal "%zz" in a path was accepted and then could never
// be sent).
func withPlaceholders(text string) string {
	parts, err := parseTemplate(text)
	if err != nil {
		return text
	}
	for i := 1; i < len(parts); i += 2 {
		parts[i] = "x"
	}
	return strings.Join(parts, "")
}

// checkLiteralURLText refuses a path or url whose literal text net/http
// cannot send (a bad %-escape, a space, a control character).
func checkLiteralURLText(where, text string, relative bool) error {
	t := withPlaceholders(text)
	if relative {
		t = "https://bank.example" + t
	}
	if strings.ContainsAny(t, " \t\r\n") {
		return profileErr(where, "must not contain spaces or line breaks (escape them, e.g. %%20)")
	}
	if _, err := url.Parse(t); err != nil {
		return profileErr(where, "is not a valid URL: %s", strings.TrimPrefix(err.Error(), "parse \""+t+"\": "))
	}
	return nil
}

// checkLiteralHeader refuses a header value whose literal text is not a
// valid HTTP header value.
func checkLiteralHeader(where, text string) error {
	if !httpguts.ValidHeaderFieldValue(withPlaceholders(text)) {
		return profileErr(where, "is not a valid header value (control characters or line breaks)")
	}
	return nil
}
