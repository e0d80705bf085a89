package bank

import (
	"net/url"
	"sort"
	"strings"
)

// Whoever may write a config need not be able to read its secrets. A write
// that changes where or how the stored secrets are sent would hand them to
// whoever the writer points the connection at, so such a write must carry
// the secrets again: the writer then proves they already hold them.

// RouteChanges lists the fields whose change between old and new redirects
// the config's secrets: provider, base_url, ca_cert (who is trusted to be
// the bank), tls_client_cert, and the provider's own routing fields
// (oauth2's token_url, auth_method, basic_encoding and assertion_audience;
// a profile's fields used in a step url). new must have its provider
// attached when it is a profile.
func RouteChanges(old, new *Config) []string {
	if old == nil {
		return nil
	}
	var changed []string
	add := func(field string, a, b string) {
		if a != b {
			changed = append(changed, field)
		}
	}
	// Compare what takes effect: a field set to its default changes nothing.
	defaults := map[string]string{}
	if p, ok := new.Lookup(); ok && old.Provider == new.Provider {
		defaults[FieldBaseURL] = p.DefaultBaseURL()
		for _, f := range p.Fields() {
			defaults[f.Name] = f.Default
		}
	}
	or := func(v, field string) string {
		if v == "" {
			return defaults[field]
		}
		return v
	}
	add(FieldProvider, old.Provider, new.Provider)
	add(FieldBaseURL, strings.TrimRight(or(old.BaseURL, FieldBaseURL), "/"), strings.TrimRight(or(new.BaseURL, FieldBaseURL), "/"))
	add(FieldCACert, strings.TrimSpace(old.CACert), strings.TrimSpace(new.CACert))
	add(FieldTLSClientCert, strings.TrimSpace(old.TLSClientCert), strings.TrimSpace(new.TLSClientCert))
	if old.Provider == new.Provider {
		for _, f := range routingFields(new) {
			add(f, or(old.Settings[f], f), or(new.Settings[f], f))
		}
	}
	return changed
}

// routingFields are the provider fields that decide where or how a secret
// is sent.
func routingFields(c *Config) []string {
	p, ok := c.Lookup()
	if !ok {
		return nil
	}
	switch pp := p.(type) {
	case oauth2Provider:
		return []string{FieldTokenURL, FieldAuthMethod, FieldBasicEncoding, FieldAssertionAudience}
	case *profileProvider:
		return pp.urlFields()
	}
	return nil
}

// urlFields lists the fields a profile's step URLs or client assertion
// audiences refer to.
func (pp *profileProvider) urlFields() []string {
	seen := map[string]bool{}
	for _, steps := range [][]Step{pp.p.Steps, refreshSteps(pp.p)} {
		for _, s := range steps {
			texts := []string{s.URL, s.Path}
			if s.Assertion != nil {
				texts = append(texts, s.Assertion.Audience)
			}
			for _, text := range texts {
				parts, _ := parseTemplate(text)
				for i := 1; i < len(parts); i += 2 {
					if name, ok := strings.CutPrefix(parts[i], "field."); ok {
						seen[name] = true
					}
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// SecretsToResend lists the secret fields of new that a write changing the
// routing fields must carry; sent reports whether the write carried a
// field. Empty when nothing redirects. tls_client_key is not among them:
// it never leaves the plugin, and a TLS client signature is bound to its
// handshake, so a new host gains nothing it could use elsewhere (a
// private_key is: its signed assertions are bearer credentials).
func SecretsToResend(old, new *Config, sent func(field string) bool) (changed, resend []string) {
	changed = RouteChanges(old, new)
	if len(changed) == 0 {
		return nil, nil
	}
	for name := range new.Secrets {
		if !sent(name) {
			resend = append(resend, name)
		}
	}
	sort.Strings(resend)
	if len(resend) == 0 {
		return nil, nil
	}
	return changed, resend
}

// ProfileEndpoints lists where a profile sends requests: its default
// base_url and, for each step, the scheme and host of its literal url or
// "base_url" for a path. Two profiles with the same list send a config's
// secrets to the same places.
func ProfileEndpoints(p *Profile) []string {
	seen := map[string]bool{"default base_url " + strings.TrimRight(p.BaseURL, "/"): true}
	var refresh []Step
	if p.Refresh != nil {
		refresh = p.Refresh.Steps
	}
	for _, steps := range [][]Step{p.Steps, refresh} {
		for _, s := range steps {
			if s.URL == "" {
				seen["base_url"] = true
				continue
			}
			seen["url "+urlOrigin(s.URL)] = true
		}
	}
	out := make([]string, 0, len(seen))
	for e := range seen {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// urlOrigin is the scheme://host[:port] of a step url, taken from its
// literal text (the part before any template).
func urlOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}
