package bank

import "context"

// Provider-specific field names.
const (
	FieldClientID      = "client_id"
	FieldClientSecret  = "client_secret"
	FieldScope         = "scope"
	FieldOAuthMetadata = "oauth_metadata"
)

// Field describes one provider-specific config field.
type Field struct {
	Name        string
	Description string
	Required    bool
	Secret      bool   // write-only: stored, never shown again
	Default     string // used when the field is not set
}

// Provider is one bank's token protocol.
type Provider interface {
	// Name is the value of a config's provider field.
	Name() string
	// DefaultBaseURL is the bank's public endpoint, or "" if base_url is required.
	DefaultBaseURL() string
	// Fields lists the provider-specific config fields.
	Fields() []Field
	// fetch obtains a token; prev is the current token (possibly nil), whose
	// refresh token the provider may use.
	fetch(ctx context.Context, c *Client, prev *Token) (*Token, error)
}

var providers = map[string]Provider{}

func register(p Provider) { providers[p.Name()] = p }
