package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// Store is the broker's view of persistent storage (Vault's, through the
// root package's adapter). Every method is one storage round trip.
type Store interface {
	// Config returns the named config ready to use (a profile provider
	// attached), or nil when there is none.
	Config(ctx context.Context, name string) (*bank.Config, error)
	// Token returns the stored token of name, or nil.
	Token(ctx context.Context, name string) (*bank.Token, error)
	// PutToken stores tok as the token of name.
	PutToken(ctx context.Context, name string, tok *bank.Token) error
	// Budget returns the stored request times of name's request budget.
	Budget(ctx context.Context, name string) ([]time.Time, error)
	// PutBudget stores the request times of name's request budget.
	PutBudget(ctx context.Context, name string, sent []time.Time) error
	// ClientOptions returns the mount-wide options every bank client gets
	// (the egress policy).
	ClientOptions(ctx context.Context) ([]bank.Option, error)
}

// ErrReadOnly is returned when a token must be fetched on a node that cannot
// store it (a performance standby): the caller should forward the request
// to the active node before any bank is asked. Store implementations return
// it (wrapped or not) for writes the node's storage refuses.
var ErrReadOnly = errors.New("cannot write to readonly storage")

// NoConfigError is returned for a name that has no config.
type NoConfigError string

func (e NoConfigError) Error() string {
	return fmt.Sprintf("no config named %q (write bankauth/config/%s first)", string(e), string(e))
}

// errConfigChanged ends a fetch whose config was changed or dropped while it
// ran: its token is neither stored nor served, and the reader starts over.
var errConfigChanged = errors.New("the config changed while its token was being fetched")
