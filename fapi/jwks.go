package fapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// DefaultMinRefetch is how soon an unknown kid may make JWKS fetch the set
// again.
const DefaultMinRefetch = time.Minute

// JWKS is the authorization server's JWK Set (jwks_uri), fetched with the
// caller's client when first needed and again when a token names a kid it
// does not hold (at most once per MinRefetch), cached by kid. It is safe
// for concurrent use.
type JWKS struct {
	HTTP       *http.Client
	URL        string
	MinRefetch time.Duration // 0 means DefaultMinRefetch

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetched   bool
	fetchedAt time.Time
	fetches   int
}

// Fetches counts the set's fetches so far.
func (j *JWKS) Fetches() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fetches
}

// Key finds the verification key for a token signed with alg whose header
// names kid ("" when it names none: then the set must hold exactly one key
// fit for alg), fetching the set when it is not cached or kid is unknown.
func (j *JWKS) Key(ctx context.Context, kid, alg string, now time.Time) (*jose.JSONWebKey, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fetched {
		if k, found := pick(j.keys, kid, alg); found {
			return k, nil
		}
		min := j.MinRefetch
		if min <= 0 {
			min = DefaultMinRefetch
		}
		if now.Sub(j.fetchedAt) < min {
			return nil, &IDTokenError{Check: CheckSignature, Msg: "no key in the JWK Set fits the token's kid and alg"}
		}
	}
	if err := j.fetch(ctx, now); err != nil {
		return nil, err
	}
	if k, found := pick(j.keys, kid, alg); found {
		return k, nil
	}
	return nil, &IDTokenError{Check: CheckSignature, Msg: "no key in the JWK Set fits the token's kid and alg"}
}

// fetch replaces the cached set. Keys go-jose cannot read are skipped, so
// one exotic key does not hide the others.
func (j *JWKS) fetch(ctx context.Context, now time.Time) error {
	if j.URL == "" {
		return &Error{Step: StepJWKS, Msg: "the authorization server has no jwks_uri"}
	}
	a, err := get(ctx, j.HTTP, StepJWKS, j.URL)
	if err != nil {
		return err
	}
	if !ok2xx(a.status) {
		return &Error{Step: StepJWKS, Status: a.status, Msg: "fetching " + j.URL + " failed"}
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(a.body, &set); err != nil {
		return &Error{Step: StepJWKS, Status: a.status, Msg: "the answer is not a JWK Set"}
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) != nil || !k.Valid() {
			continue
		}
		if !k.IsPublic() {
			k = k.Public()
		}
		keys = append(keys, k)
	}
	j.keys, j.fetched, j.fetchedAt = keys, true, now
	j.fetches++
	return nil
}

// pick finds the key for kid and alg.
func pick(keys []jose.JSONWebKey, kid, alg string) (*jose.JSONWebKey, bool) {
	var fit []int
	for i := range keys {
		k := &keys[i]
		if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != alg) || !keyFitsAlg(k.Key, alg) {
			continue
		}
		if kid != "" && k.KeyID == kid {
			return k, true
		}
		fit = append(fit, i)
	}
	if kid == "" && len(fit) == 1 {
		return &keys[fit[0]], true
	}
	return nil, false
}

// keyFitsAlg says whether a public key can verify alg.
func keyFitsAlg(key any, alg string) bool {
	switch key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "PS") || strings.HasPrefix(alg, "RS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
