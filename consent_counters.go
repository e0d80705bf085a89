package bankauth

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
)

// Why a consent's refresh failed, as bankauth_consent_refresh_failures_total
// labels it (reason). A fixed set: the label never carries an id or the
// bank's own text.
const (
	refreshFailInvalidGrant  = "invalid_grant"    // the bank refused the refresh token: the consent is revoked
	refreshFailExpired       = "expired"          // invalid_grant past consent_expires_at: the consent is expired
	refreshFailNoRefresh     = "no_refresh_token" // the access token ran out and the bank gave no refresh token
	refreshFailUnknown       = "unknown_outcome"  // sent, but the answer was lost or unreadable: never sent again
	refreshFailUpstream      = "upstream"         // 5xx, 429 or a transport failure: the stored token keeps serving
	refreshFailRejected      = "rejected"         // another 4xx (invalid_client, a DPoP proof refused...)
	refreshFailEgress        = "egress"           // the mount's egress policy refused the token endpoint
	refreshFailConfig        = "config"           // the config is missing or no longer valid (keys, pins, metadata)
	refreshFailStorage       = "storage"          // the consent could not be read or its outcome stored
	refreshFailOther         = "other"            // anything else (a request that could not be built, a cancelled one)
	consentRefreshReasonsLen = 10
)

// consentRefreshReasons lists every reason, in the order the counters keep.
var consentRefreshReasons = [consentRefreshReasonsLen]string{
	refreshFailInvalidGrant, refreshFailExpired, refreshFailNoRefresh, refreshFailUnknown, refreshFailUpstream,
	refreshFailRejected, refreshFailEgress, refreshFailConfig, refreshFailStorage, refreshFailOther,
}

// consentCounters are one config's consent refresh failures by reason and
// the revocations seen (invalid_grant turning a consent revoked), on this
// node since the plugin started. A few words per config, whatever its
// number of consents.
type consentCounters struct {
	failures    [consentRefreshReasonsLen]atomic.Uint64
	revocations atomic.Uint64
}

// consentStats holds the consentCounters of every config that had a
// consent refresh fail on this node.
type consentStats struct {
	mu sync.RWMutex
	m  map[string]*consentCounters
}

func (s *consentStats) of(config string) *consentCounters {
	s.mu.RLock()
	c := s.m[config]
	s.mu.RUnlock()
	if c != nil {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*consentCounters{}
	}
	if c = s.m[config]; c == nil {
		c = &consentCounters{}
		s.m[config] = c
	}
	return c
}

// failed counts a failed refresh of one of config's consents; a revocation
// when the bank's invalid_grant revoked it.
func (s *consentStats) failed(config, reason string) {
	c := s.of(config)
	for i, r := range consentRefreshReasons {
		if r == reason {
			c.failures[i].Add(1)
			break
		}
	}
	if reason == refreshFailInvalidGrant {
		c.revocations.Add(1)
	}
}

// consentCounts is a copy of one config's counters.
type consentCounts struct {
	Failures    map[string]uint64 // every reason, zeros included
	Revocations uint64
}

// get returns config's counters; ok is false when none failed on this node.
func (s *consentStats) get(config string) (consentCounts, bool) {
	s.mu.RLock()
	c := s.m[config]
	s.mu.RUnlock()
	out := consentCounts{Failures: make(map[string]uint64, consentRefreshReasonsLen)}
	for i, r := range consentRefreshReasons {
		if c != nil {
			out.Failures[r] = c.failures[i].Load()
		} else {
			out.Failures[r] = 0
		}
	}
	if c != nil {
		out.Revocations = c.revocations.Load()
	}
	return out, c != nil
}

// configs returns the configs with counters, sorted.
func (s *consentStats) configs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.m))
	for n := range s.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// forget drops config's counters (its config was deleted).
func (s *consentStats) forget(config string) {
	s.mu.Lock()
	delete(s.m, config)
	s.mu.Unlock()
}

// refreshFailureReason is the reason of a refresh grant that failed with
// err at the bank (or before it was sent); spent is refreshTokenSpent(err),
// expired whether the consent is past its consent_expires_at.
func refreshFailureReason(err error, expired bool) string {
	var ee *bank.EgressError
	var fe *fapi.Error
	switch {
	case fapi.IsInvalidGrant(err) && expired:
		return refreshFailExpired
	case fapi.IsInvalidGrant(err):
		return refreshFailInvalidGrant
	case refreshTokenSpent(err):
		return refreshFailUnknown
	case errors.As(err, &ee):
		return refreshFailEgress
	case errors.Is(err, context.DeadlineExceeded): // the bank too slow for the config's timeout
		return refreshFailUpstream
	case errors.Is(err, context.Canceled): // the plugin stopping, not the bank
		return refreshFailOther
	case !errors.As(err, &fe):
		return refreshFailOther
	case fe.Status == 0 && fe.Unwrap() != nil, fe.Status >= 500, fe.Status == 429:
		return refreshFailUpstream
	case fe.Status >= 400:
		return refreshFailRejected
	}
	return refreshFailOther
}
