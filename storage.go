package bankauth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/hashicorp/vault/sdk/logical"
)

// Storage layout of a mount:
//
//	config/<name>   bank.Config (seal-wrapped)
//	token/<name>    bank.Token (seal-wrapped, local to a replication cluster)
//	budget/<name>   storedBudget (local)
//	profile/<name>  storedProfile
//	settings        mountSettings
const (
	configPrefix = "config/"
	tokenPrefix  = "token/"
	// budgetPrefix holds each name's recent bank request times, so that the
	// request budget (max_requests_per_minute/day) survives a Vault restart
	// or plugin reload.
	budgetPrefix = "budget/"
)

// storedBudget is what budget/<name> holds: request times in Unix
// milliseconds, oldest first.
type storedBudget struct {
	SentMillis []int64 `json:"sent_ms"`
}

// readConfig reads a config from storage, with the keys it names; nil if
// there is none.
func readConfig(ctx context.Context, s logical.Storage, name string) (*bank.Config, error) {
	cfg, err := readStoredConfig(ctx, s, name)
	if err != nil || cfg == nil {
		return nil, err
	}
	if err := resolveConfigKeys(ctx, s, cfg); err != nil { // signing_key, tls_key, dpop_key (key_config.go)
		return nil, err
	}
	return cfg, nil
}

// readStoredConfig reads a config as stored, without resolving the keys it
// names; nil if there is none.
func readStoredConfig(ctx context.Context, s logical.Storage, name string) (*bank.Config, error) {
	se, err := s.Get(ctx, configPrefix+name)
	if err != nil || se == nil {
		return nil, err
	}
	var cfg bank.Config
	if err := se.DecodeJSON(&cfg); err != nil {
		return nil, fmt.Errorf("decoding config %q: %w", name, err)
	}
	return &cfg, nil
}

// readToken reads a stored token; nil if there is none.
func readToken(ctx context.Context, s logical.Storage, name string) (*bank.Token, error) {
	se, err := s.Get(ctx, tokenPrefix+name)
	if err != nil || se == nil {
		return nil, err
	}
	var tok bank.Token
	if err := se.DecodeJSON(&tok); err != nil {
		return nil, fmt.Errorf("decoding stored token of %q: %w", name, err)
	}
	return &tok, nil
}

// attachProfile makes a config whose provider is not built in run the
// stored profile of that name. A config without provider, or with a
// built-in one, is left alone; an unknown name is a *bank.FieldError.
func attachProfile(ctx context.Context, s logical.Storage, cfg *bank.Config) error {
	if cfg.Provider == "" {
		return nil
	}
	if _, builtin := bank.Lookup(cfg.Provider); builtin {
		return nil
	}
	p, _, err := readProfile(ctx, s, cfg.Provider)
	if err != nil {
		return err
	}
	if p == nil {
		return &bank.FieldError{Field: bank.FieldProvider, Message: fmt.Sprintf(
			"names no provider (built in: %s; or write bankauth/profile/<provider> first)", strings.Join(bank.Names(), ", "))}
	}
	prov, err := bank.NewProfileProvider(cfg.Provider, p)
	if err != nil {
		return err
	}
	cfg.UseProvider(prov)
	return nil
}

// store is the broker's view of a mount's Vault storage: the request's (or
// the mount's) storage, and the backend for the mount-wide settings.
type store struct {
	b *backend
	s logical.Storage
}

var _ broker.Store = store{}

// Config reads a config with its profile attached, for the broker: a
// config whose tokens belong to consents is a consentConfigError.
func (st store) Config(ctx context.Context, name string) (*bank.Config, error) {
	cfg, err := readConfigWithProfile(ctx, st.s, name)
	if err == nil && cfg.IsAuthorizationCode() { // config_authcode.go
		return nil, consentConfigError(name)
	}
	return cfg, err
}

// readConfigWithProfile reads a config with its keys and profile; nil if
// there is none.
func readConfigWithProfile(ctx context.Context, s logical.Storage, name string) (*bank.Config, error) {
	cfg, err := readConfig(ctx, s, name)
	if err != nil || cfg == nil {
		return nil, err
	}
	if err := attachProfile(ctx, s, cfg); err != nil {
		return nil, fmt.Errorf("stored config %q: %w", name, err)
	}
	return cfg, nil
}

func (st store) Token(ctx context.Context, name string) (*bank.Token, error) {
	return readToken(ctx, st.s, name)
}

func (st store) PutToken(ctx context.Context, name string, tok *bank.Token) error {
	se, err := logical.StorageEntryJSON(tokenPrefix+name, tok)
	if err != nil {
		return err
	}
	return readOnlyError(st.s.Put(ctx, se))
}

func (st store) Budget(ctx context.Context, name string) ([]time.Time, error) {
	se, err := st.s.Get(ctx, budgetPrefix+name)
	if err != nil || se == nil {
		return nil, err
	}
	var sb storedBudget
	if err := se.DecodeJSON(&sb); err != nil {
		return nil, fmt.Errorf("decoding request budget of %q: %w", name, err)
	}
	sent := make([]time.Time, len(sb.SentMillis))
	for i, ms := range sb.SentMillis {
		sent[i] = time.UnixMilli(ms)
	}
	return sent, nil
}

func (st store) PutBudget(ctx context.Context, name string, sent []time.Time) error {
	sb := storedBudget{SentMillis: make([]int64, len(sent))}
	for i, t := range sent {
		sb.SentMillis[i] = t.UnixMilli()
	}
	se, err := logical.StorageEntryJSON(budgetPrefix+name, sb)
	if err != nil {
		return err
	}
	return st.s.Put(ctx, se)
}

// ClientOptions returns the mount's egress policy, the stored settings
// applied (egress.go).
func (st store) ClientOptions(ctx context.Context) ([]bank.Option, error) {
	opt, err := st.b.egressFor(ctx, st.s)
	if err != nil {
		return nil, err
	}
	return []bank.Option{opt}, nil
}

// readOnlyError turns Vault's read-only storage error, which crosses gRPC
// as text, into broker.ErrReadOnly.
func readOnlyError(err error) error {
	if err != nil && strings.Contains(err.Error(), logical.ErrReadOnly.Error()) {
		return fmt.Errorf("%w: %v", broker.ErrReadOnly, err)
	}
	return err
}
