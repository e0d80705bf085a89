package bankauth

import (
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
)

// The authorization server of an authorization_code config as stored:
// the metadata in use, which endpoints an operator set by hand, and what
// the last refresh of the issuer's metadata found.

// metadataMaxAge is how old the issuer's metadata may grow before the next
// consent request fetches it again.
const metadataMaxAge = 24 * time.Hour

// metadataRetry is how long a failed refresh of the metadata waits before
// the next try; the metadata in use keeps serving meanwhile.
const metadataRetry = time.Hour

// authServerState is bank.Config.AuthServer. The metadata in use is
// embedded, so configs stored before the other fields existed read as
// metadata fetched at FetchedAt and never checked since.
type authServerState struct {
	fapi.Metadata
	// ByHand are the endpoint fields (bank.DiscoveredFields) the operator
	// set: a refresh never changes them. With authorization_url, par_url
	// and token_url (and jwks_uri with openid) all by hand, nothing is
	// discovered and Source is empty.
	ByHand []string `json:"by_hand,omitempty"`
	// CheckedAt is when the issuer's metadata was last fetched, whether or
	// not it was applied.
	CheckedAt time.Time `json:"checked_at,omitzero"`
	// PendingChange lists the endpoints a refresh would move to another
	// host (fapi.EndpointMove's text): not applied until an operator
	// rewrites the config.
	PendingChange []string `json:"pending_change,omitempty"`
	// RefreshError is why the last refresh failed or was not applied;
	// RefreshTriedAt is when it ran.
	RefreshError   string    `json:"refresh_error,omitempty"`
	RefreshTriedAt time.Time `json:"refresh_tried_at,omitzero"`
}

// loadAuthServer reads a config's stored authorization server state.
func loadAuthServer(cfg *bank.Config) (*authServerState, error) {
	if len(cfg.AuthServer) == 0 {
		return nil, errors.New("the config has no authorization server metadata: write it again")
	}
	var st authServerState
	if err := json.Unmarshal(cfg.AuthServer, &st); err != nil {
		return nil, errors.New("the config's stored authorization server metadata cannot be read: write it again")
	}
	if st.CheckedAt.IsZero() {
		st.CheckedAt = st.FetchedAt
	}
	return &st, nil
}

// store puts st into cfg.AuthServer.
func (st *authServerState) store(cfg *bank.Config) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	cfg.AuthServer = raw
	return nil
}

// discovered reports whether the metadata came from the issuer (not every
// endpoint set by hand).
func (st *authServerState) discovered() bool { return st.Source != "" }

// due reports whether the issuer's metadata should be fetched again at now:
// it was discovered, is older than metadataMaxAge and, after a failed
// refresh, metadataRetry has passed.
func (st *authServerState) due(now time.Time) bool {
	if !st.discovered() || now.Before(st.CheckedAt.Add(metadataMaxAge)) {
		return false
	}
	return st.RefreshError == "" || !now.Before(st.RefreshTriedAt.Add(metadataRetry))
}

// endpointRefs maps each endpoint field of a config to its metadata field.
func endpointRefs(m *fapi.Metadata) map[string]*string {
	return map[string]*string{
		bank.FieldAuthorizationURL: &m.AuthorizationEndpoint,
		bank.FieldPARURL:           &m.PushedAuthorizationRequestEndpoint,
		bank.FieldTokenURL:         &m.TokenEndpoint,
		bank.FieldRevocationURL:    &m.RevocationEndpoint,
		bank.FieldJWKSURI:          &m.JWKSURI,
	}
}

// endpointsByHand are the endpoint fields set by hand after a write: those
// the stored config had by hand, plus those the write set, minus those it
// emptied.
func endpointsByHand(prev, cfg *bank.Config, sent map[string]bool) map[string]bool {
	out := map[string]bool{}
	if prev != nil && prev.IsAuthorizationCode() && len(prev.AuthServer) > 0 {
		if st, err := loadAuthServer(prev); err == nil {
			for _, f := range st.ByHand {
				out[f] = true
			}
		}
	}
	for _, f := range bank.DiscoveredFields {
		if _, named := sent[f]; named { // sent maps a field emptied by the write to false
			if cfg.Settings[f] != "" {
				out[f] = true
			} else {
				delete(out, f)
			}
		}
	}
	return out
}

// handRequired are the endpoint fields a config needs by hand to do
// without discovery: par_url with fapi=2.0 (elsewhere a server without one
// gets its requests through the browser), jwks_uri when its scope has
// openid (ID tokens are checked against it).
func handRequired(cfg *bank.Config) []string {
	req := []string{bank.FieldAuthorizationURL, bank.FieldTokenURL}
	if cfg.Settings[bank.FieldFAPI] == bank.FAPI2 {
		req = []string{bank.FieldAuthorizationURL, bank.FieldPARURL, bank.FieldTokenURL}
	}
	if fapi.HasScope(cfg.Value(bank.FieldScope), "openid") {
		req = append(req, bank.FieldJWKSURI)
	}
	return req
}

// allByHand reports whether every endpoint the config needs is set by hand.
func allByHand(cfg *bank.Config, byHand map[string]bool) bool {
	for _, f := range handRequired(cfg) {
		if !byHand[f] {
			return false
		}
	}
	return true
}

// checkHandEndpoint checks an endpoint set by hand: an absolute https URL
// (plain http only for loopback hosts) without user info or fragment. The
// error names the field, never the value.
func checkHandEndpoint(field, raw string) error {
	u, err := url.Parse(raw)
	bad := err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != ""
	if !bad && u.Scheme != "https" {
		h, ip := u.Hostname(), net.ParseIP(u.Hostname())
		bad = u.Scheme != "http" || !(strings.EqualFold(h, "localhost") || (ip != nil && ip.IsLoopback()))
	}
	if bad {
		return &bank.FieldError{Field: field, Message: "must be an absolute https URL without user info or fragment (plain http only for loopback hosts)"}
	}
	return nil
}

// metadataByHand is the metadata of a config whose endpoints are all set
// by hand: the configured issuer and the endpoints, nothing advertised.
func metadataByHand(cfg *bank.Config) *fapi.Metadata {
	m := &fapi.Metadata{Issuer: cfg.Settings[bank.FieldIssuer]}
	for f, ref := range endpointRefs(m) {
		*ref = cfg.Settings[f]
	}
	return m
}

// overrideByHand puts the hand-set endpoints of cfg into m.
func overrideByHand(m *fapi.Metadata, cfg *bank.Config, byHand []string) {
	refs := endpointRefs(m)
	for _, f := range byHand {
		*refs[f] = cfg.Settings[f]
	}
}

// applyEndpoints copies m's endpoints into cfg's endpoint fields, so reads,
// pins and the egress policy see the endpoints in use.
func applyEndpoints(cfg *bank.Config, m *fapi.Metadata) {
	for f, ref := range endpointRefs(m) {
		if *ref == "" {
			delete(cfg.Settings, f)
		} else {
			cfg.Settings[f] = *ref
		}
	}
}

// sortedFields is a field set in bank.DiscoveredFields order.
func sortedFields(set map[string]bool) []string {
	var out []string
	for _, f := range bank.DiscoveredFields {
		if set[f] {
			out = append(out, f)
		}
	}
	return out
}

// authServerData is what config and status reads show of an
// authorization_code config's metadata: when it was fetched and checked,
// the endpoints set by hand, a refresh held back (the endpoints it would
// move, by host) and the last refresh error. Never a secret: metadata is
// public.
func authServerData(cfg *bank.Config) map[string]any {
	data := map[string]any{
		"metadata_fetched_at":     nil,
		"metadata_checked_at":     nil,
		"metadata_pending_change": nil,
		"metadata_refresh_error":  nil,
		"endpoints_set_by_hand":   []string{},
	}
	st, err := loadAuthServer(cfg)
	if err != nil {
		data["metadata_refresh_error"] = err.Error()
		return data
	}
	if st.discovered() {
		data["metadata_fetched_at"] = rfc3339(st.FetchedAt)
		data["metadata_checked_at"] = rfc3339(st.CheckedAt)
	}
	if len(st.PendingChange) > 0 {
		data["metadata_pending_change"] = slices.Clone(st.PendingChange)
	}
	if st.RefreshError != "" {
		data["metadata_refresh_error"] = st.RefreshError
	}
	if len(st.ByHand) > 0 {
		byHand := slices.Clone(st.ByHand)
		sort.Strings(byHand)
		data["endpoints_set_by_hand"] = byHand
	}
	return data
}
