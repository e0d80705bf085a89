package bank

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Common field names, shared by every provider.
const (
	FieldProvider = "provider"
	FieldBaseURL  = "base_url"
	FieldCACert   = "ca_cert"
	FieldTimeout  = "timeout"
)

// Timeout bounds: a fetch must finish well inside Vault's default 90 s
// request limit.
const (
	DefaultTimeout = 30 * time.Second
	MaxTimeout     = 60 * time.Second
)

// Config is one named bank connection: which provider, where, and with which
// credentials. Settings and Secrets hold the provider-specific fields.
type Config struct {
	Provider string        `json:"provider"`
	BaseURL  string        `json:"base_url,omitempty"`
	CACert   string        `json:"ca_cert,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
	// Settings are the provider's non-secret fields (client_id, scope, ...).
	Settings map[string]string `json:"settings,omitempty"`
	// Secrets are the provider's write-only fields (client_secret, password, ...).
	Secrets map[string]string `json:"secrets,omitempty"`
	// OAuthMetadata is RAKBANK's oauth_metadata object, sent as given.
	OAuthMetadata map[string]any `json:"oauth_metadata,omitempty"`
	// Lifecycle and budget settings; see limits.go.
	Lifecycle
	// NoLease is the Vault backend's setting lease=false: token reads carry
	// no Vault lease. The client ignores it; stored inverted so that configs
	// written before the field existed keep the default (leases on).
	NoLease bool `json:"no_lease,omitempty"`
	// TLSClientCert and TLSClientKey (write-only) are the PEM certificate and
	// private key presented to the bank for mutual TLS; both or neither.
	TLSClientCert string `json:"tls_client_cert,omitempty"`
	TLSClientKey  string `json:"tls_client_key,omitempty"`
	// NoCache (config field cache=false) makes every read fetch a new
	// token, for banks whose tokens are single-use; nothing is stored.
	NoCache bool `json:"no_cache,omitempty"`
	// AuthServer is the authorization server's metadata of an
	// authorization_code config, as discovered when it was written (the
	// plugin's fapi.Metadata as JSON).
	AuthServer json.RawMessage `json:"auth_server,omitempty"`

	// custom is the provider of a config whose provider is not built in (a
	// profile the backend stored); see UseProvider.
	custom Provider
	// keys are the keys signing_key, tls_key and dpop_key name; see UseKeys.
	keys Keys
}

// FieldError is invalid configuration input; Field names the culprit.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Value returns a provider field, secret or not, falling back to its default.
func (c *Config) Value(name string) string {
	if v, ok := c.Secrets[name]; ok {
		return v
	}
	if v, ok := c.Settings[name]; ok {
		return v
	}
	if p, ok := c.Lookup(); ok {
		for _, f := range p.Fields() {
			if f.Name == name {
				return f.Default
			}
		}
	}
	return ""
}

// EffectiveBaseURL is base_url, or the provider's public default.
func (c *Config) EffectiveBaseURL() string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	if p, ok := c.Lookup(); ok {
		return p.DefaultBaseURL()
	}
	return ""
}

// EffectiveTimeout is timeout, or DefaultTimeout.
func (c *Config) EffectiveTimeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

// SecretValues lists the config's secret values, for scrubbing text.
func (c *Config) SecretValues() []string {
	out := make([]string, 0, len(c.Secrets))
	for _, v := range c.Secrets {
		out = append(out, v)
	}
	if c.TLSClientKey != "" {
		out = append(out, c.TLSClientKey)
	}
	return out
}

// Validate checks a complete config: a known provider, every required field
// present, no field that belongs to another provider, a usable base_url and
// CA bundle, a sane timeout. The error is a *FieldError.
func (c *Config) Validate() error {
	p, ok := c.Lookup()
	if !ok {
		if c.Provider == "" {
			return fieldErr(FieldProvider, "is required (one of %s)", strings.Join(Names(), ", "))
		}
		return fieldErr(FieldProvider, "names no provider: use one of %s, or the name of a profile", strings.Join(Names(), ", "))
	}
	known := map[string]Field{}
	for _, f := range p.Fields() {
		known[f.Name] = f
	}
	for name := range c.Settings {
		if f, ok := known[name]; (!ok || f.Secret) && !isKeyField(name) {
			return fieldErr(name, "does not apply to provider %s", c.Provider)
		}
	}
	for name := range c.Secrets {
		if f, ok := known[name]; !ok || !f.Secret {
			return fieldErr(name, "does not apply to provider %s", c.Provider)
		}
	}
	if c.OAuthMetadata != nil {
		if f, ok := known[FieldOAuthMetadata]; !ok || f.Secret {
			return fieldErr(FieldOAuthMetadata, "does not apply to provider %s", c.Provider)
		}
	}
	for _, f := range p.Fields() {
		if f.Required && f.Default == "" && c.Value(f.Name) == "" && !(f.Name == FieldOAuthMetadata && c.OAuthMetadata != nil) &&
			!(f.Name == FieldPrivateKey && c.Settings[FieldSigningKey] != "") { // a profile's assertion key, given by signing_key
			return fieldErr(f.Name, "is required for provider %s", c.Provider)
		}
	}
	if sv, ok := p.(selfValidating); ok {
		if err := sv.validate(c); err != nil {
			return err
		}
	} else if c.BaseURL == "" && p.DefaultBaseURL() == "" {
		return fieldErr(FieldBaseURL, "is required for provider %s (it has no public default)", c.Provider)
	}
	if c.BaseURL != "" {
		if err := ValidateBaseURL(c.BaseURL); err != nil {
			return err
		}
	}
	if c.CACert != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(c.CACert)) {
		return fieldErr(FieldCACert, "contains no PEM-encoded certificate")
	}
	if err := c.validateClientCert(); err != nil {
		return err
	}
	if err := c.validateKeys(); err != nil {
		return err
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		return fieldErr(FieldTimeout, "must be between 1s and %s", MaxTimeout)
	}
	if err := c.Lifecycle.validate(); err != nil {
		return err
	}
	return c.validateBudgetFits() // budget_fit.go
}

// ValidateBaseURL accepts an absolute https URL without query, fragment or
// user info; plain http only for loopback hosts.
func ValidateBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fieldErr(FieldBaseURL, "must be an absolute URL like https://api.bank.example")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fieldErr(FieldBaseURL, "must not contain user info, a query or a fragment")
	}
	if why := numericHostReason(u.Hostname()); why != "" {
		return fieldErr(FieldBaseURL, "%s", why)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return fieldErr(FieldBaseURL, "must use https (plain http is allowed only for loopback hosts)")
		}
	default:
		return fieldErr(FieldBaseURL, "scheme must be https")
	}
	if why := unroutableHost(u.Hostname()); why != "" {
		return fieldErr(FieldBaseURL, "the host is %s, where no bank lives", why)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Names lists the built-in provider names, sorted.
func Names() []string {
	out := make([]string, 0, len(providers))
	for n := range providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup finds a built-in provider by name.
func Lookup(name string) (Provider, bool) {
	p, ok := providers[name]
	return p, ok
}

// AllFields is every provider-specific field of every provider, by name.
// A field that several providers share (client_id) appears once.
func AllFields() map[string]Field {
	out := map[string]Field{}
	for _, p := range providers {
		for _, f := range p.Fields() {
			out[f.Name] = f
		}
	}
	for _, f := range keyFields {
		out[f.Name] = f
	}
	return out
}
