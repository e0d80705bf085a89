package broker

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// Consent tokens (issue 19) are the tokens of user consents of an
// authorization_code config, token/<config>/<id>. Their lifecycle is that
// of a connection's token (single flight, a compact token in memory,
// serve-while-valid, backoff, background refresh through the one
// scheduler), with two differences: what a consent is, and how its token is
// renewed, belong to a ConsentSource (the root package, over Vault storage
// and package fapi), and a consent's state exists only once it is read.

// ConsentToken is a consent's token as its source hands it over, with the
// settings of its config that reads need. It never holds a refresh token.
type ConsentToken struct {
	// Token is the access token; its RefreshToken is ignored.
	Token bank.Token
	// Refreshable is whether storage holds a refresh token for it.
	Refreshable bool
	// Lease is whether reads carry a Vault lease.
	Lease bool
	// Idle is the config's background_refresh_idle in effect; 0: off.
	Idle time.Duration
}

// ConsentSource is a mount's consents: their storage and their bank. The
// broker decides when to ask; the source knows how. Every method may be
// called concurrently for different consents; the broker never calls
// RenewConsent twice at once for one consent.
type ConsentSource interface {
	// LoadConsent returns the consent's stored token. Errors: NoConsentError,
	// *ReauthError (no usable token), NoConfigError, storage errors.
	LoadConsent(ctx context.Context, config, id string) (ConsentToken, error)
	// RenewConsent returns a new token for the consent by the refresh
	// grant, its rotated refresh token stored before it returns; or, when
	// storage holds a fresh token other than held (the access token the
	// caller has), that one. A *ReauthError means the consent cannot be
	// renewed (invalid_grant: revoked or expired) and the bank must not be
	// asked again; any other error leaves the stored token as it was.
	RenewConsent(ctx context.Context, config, id, held string) (ConsentToken, error)
	// ExpireAttempt removes the consent's authorization attempt if it has
	// expired (a newer one, or none, is left alone).
	ExpireAttempt(ctx context.Context, config, id string) error
	// SweepAttempts removes every expired attempt that storage knows of,
	// those planned by an earlier process included, and reports whether
	// attempts not yet expired are left for a later sweep. It must cost in
	// proportion to the attempts stored, not to the consents.
	SweepAttempts(ctx context.Context) (more bool, err error)
}

// NoConsentError is returned for a consent that does not exist.
type NoConsentError struct{ Config, ID string }

func (e NoConsentError) Error() string {
	return fmt.Sprintf("consent %s/%s does not exist: write consent/%s/%s to start an authorization", e.Config, e.ID, e.Config, e.ID)
}

// ReauthError is returned for a consent without a usable token (pending,
// denied, revoked, expired): only a new authorization helps.
type ReauthError struct{ Config, ID, Reason string }

func (e *ReauthError) Error() string {
	return fmt.Sprintf("consent %s/%s needs re-authorization: %s", e.Config, e.ID, e.Reason)
}

// StoreError is a ConsentSource's failure to store a renewed consent: the
// bank answered, but its new tokens are not in storage, so the new access
// token is not handed out, the reader gets the error (not the old token),
// and no backoff follows (the source never sends the spent refresh token
// again).
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return "storing the renewed consent: " + e.Err.Error() }

// Unwrap returns the storage error.
func (e *StoreError) Unwrap() error { return e.Err }

// consent is the in-memory state of one consent that was read: like conn,
// only what a cached read needs, the lock and backoff allocated only while
// needed.
type consent struct {
	config, id string
	state      atomic.Pointer[consentState]
	gen        atomic.Uint32 // counts drops; a state of an older generation is never served
	fetches    atomic.Uint32 // renewals started (numbers them)
	lastRead   atomic.Int64  // unix nanoseconds of the last read
	planned    atomic.Pointer[consentState]
	health     atomic.Pointer[health]

	gate *gate // guarded by the broker's gates mutex
	plan plan  // guarded by the scheduler's mutex
}

// consentState is a consent's token and settings; never changed once
// published.
type consentState struct {
	tok     memToken
	view    // idleSecs and lease; noCache is never set
	gen     uint32
	fetchNo uint32 // the renewal that brought tok; 0 when loaded from storage
}

func newConsentState(ct ConsentToken, gen, no uint32) *consentState {
	tok := compact(&ct.Token)
	tok.refreshable = ct.Refreshable
	secs := min(int64((ct.Idle+time.Second-1)/time.Second), 1<<31-1)
	return &consentState{tok: tok, view: view{idleSecs: int32(max(secs, 0)), lease: ct.Lease}, gen: gen, fetchNo: no}
}

func (e *consent) current() *consentState {
	s := e.state.Load()
	if s == nil || s.gen != e.gen.Load() {
		return nil
	}
	return s
}

func (e *consent) touch(now time.Time) {
	if n := now.UnixNano(); n-e.lastRead.Load() > int64(time.Second) {
		e.lastRead.Store(n)
	}
}

// drop forgets the state; whatever a renewal in flight brings is not kept.
func (e *consent) drop() {
	e.gen.Add(1)
	e.state.Store(nil)
	e.planned.Store(nil)
	e.health.Store(nil)
}

func (e *consent) slot() *plan   { return &e.plan }
func (e *consent) label() string { return e.config + "/" + e.id }
func (e *consent) run(ctx context.Context, b *Broker, of any) {
	b.refreshConsentInBackground(ctx, e, of.(*consentState))
}

// consents is a broker's consent states by config, so a lookup from a
// request path allocates nothing and a config's consents go at once.
type consents map[string]*consentGroup

// consentGroup is one config's consents; each shares name.
type consentGroup struct {
	name string
	ids  map[string]*consent
}

func (b *Broker) lookupConsent(config, id string) *consent {
	b.cmu.RLock()
	defer b.cmu.RUnlock()
	if g := b.consents[config]; g != nil {
		return g.ids[id]
	}
	return nil
}

// consentFor returns the consent's state, creating it. Names cut from a
// request path are copied, so the path is not kept alive.
func (b *Broker) consentFor(config, id string) *consent {
	if e := b.lookupConsent(config, id); e != nil {
		return e
	}
	b.cmu.Lock()
	defer b.cmu.Unlock()
	g := b.consents[config]
	if g == nil {
		g = &consentGroup{name: strings.Clone(config), ids: map[string]*consent{}}
		b.consents[g.name] = g
	}
	e := g.ids[id]
	if e == nil {
		e = &consent{config: g.name, id: strings.Clone(id), plan: plan{index: -1}}
		g.ids[e.id] = e
	}
	return e
}

// removeConsent drops e and, if it is still the consent's state, forgets it.
func (b *Broker) removeConsent(e *consent) {
	b.cmu.Lock()
	if g := b.consents[e.config]; g != nil && g.ids[e.id] == e {
		delete(g.ids, e.id)
		if len(g.ids) == 0 {
			delete(b.consents, e.config)
		}
	}
	b.cmu.Unlock()
	b.sched.cancel(e)
	e.drop()
}

// ForgetConsent drops what memory holds for the consent (it changed in
// storage: a callback, a new attempt, a delete, another node's write). A
// renewal in flight neither keeps nor plans its token.
func (b *Broker) ForgetConsent(config, id string) {
	if e := b.lookupConsent(config, id); e != nil {
		b.removeConsent(e)
	}
}

// forgetConsents drops every consent of config (its config changed).
func (b *Broker) forgetConsents(config string) {
	b.cmu.Lock()
	g := b.consents[config]
	delete(b.consents, config)
	b.cmu.Unlock()
	if g == nil {
		return
	}
	for _, e := range g.ids {
		b.sched.cancel(e)
		e.drop()
	}
}

// forgetAllConsents drops every consent's state.
func (b *Broker) forgetAllConsents() {
	b.cmu.Lock()
	all := b.consents
	b.consents = consents{}
	b.cmu.Unlock()
	for _, g := range all {
		for _, e := range g.ids {
			b.sched.cancel(e)
			e.drop()
		}
	}
}

// ConsentLen returns how many consents have state in memory.
func (b *Broker) ConsentLen() int {
	b.cmu.RLock()
	defer b.cmu.RUnlock()
	n := 0
	for _, g := range b.consents {
		n += len(g.ids)
	}
	return n
}
