package emulator

import (
	"maps"
	"slices"
	"sort"
	"time"
)

// newFAPIState applies the options' defaults and registers their client.
// A client that cannot be registered (a bad inline JWK Set) is kept
// without keys, so that every assertion fails and says why.
func newFAPIState(o FAPIOptions) *fapiState {
	if o.Client.ID == "" {
		o.Client.ID = DefaultFAPIClientID
	}
	if len(o.Client.RedirectURIs) == 0 {
		o.Client.RedirectURIs = DefaultFAPIRedirectURIs
	}
	if o.User == "" {
		o.User = DefaultFAPIUser
	}
	if o.GrantTTL <= 0 {
		o.GrantTTL = DefaultFAPIGrantTTL
	}
	if o.Scopes == nil {
		o.Scopes = DefaultFAPIScopes
	}
	o.Scopes = slices.Clone(o.Scopes)
	st := &fapiState{opts: o, clients: map[string]*fapiClient{}}
	st.signer, st.kid = newFAPISigner()
	c, err := newFAPIClient(o.Client)
	if err != nil {
		c = &fapiClient{FAPIClient: FAPIClient{ID: o.Client.ID, RedirectURIs: slices.Clone(o.Client.RedirectURIs)}}
	}
	st.clients[c.ID] = c
	st.reset()
	return st
}

// Check reports what makes c unfit for registration: no ID, no redirect
// URIs or a bad one, an inline JWK Set without a public signing key, a
// jwks_uri that is not an http(s) URL.
func (c FAPIClient) Check() error {
	_, err := newFAPIClient(c)
	return err
}

// RegisterFAPIClient registers c with the authorization server, replacing
// a client of the same ID (and its cached keys).
func (s *Server) RegisterFAPIClient(c FAPIClient) error {
	fc, err := newFAPIClient(c)
	if err != nil {
		return err
	}
	s.fapi.mu.Lock()
	s.fapi.clients[fc.ID] = fc
	s.fapi.mu.Unlock()
	return nil
}

// SetFAPIDeny makes the user deny (true) or approve (false) every
// authorization request from now on; denial redirects with
// error=access_denied.
func (s *Server) SetFAPIDeny(deny bool) {
	s.fapi.mu.Lock()
	s.fapi.deny = deny
	s.fapi.mu.Unlock()
}

// SetFAPIUser sets who approves (the sub of new grants); "" restores the
// options' user. A pushed request's login_hint still wins.
func (s *Server) SetFAPIUser(user string) {
	s.fapi.mu.Lock()
	s.fapi.user = orDefault(user, s.fapi.opts.User)
	s.fapi.mu.Unlock()
}

// SetFAPIDPoPNonce turns the DPoP nonce challenges on or off.
func (s *Server) SetFAPIDPoPNonce(on bool) {
	s.fapi.mu.Lock()
	s.fapi.noNonce = !on
	s.fapi.mu.Unlock()
}

// SetFAPIRefreshRotation turns refresh token rotation (with reuse
// detection) on or off.
func (s *Server) SetFAPIRefreshRotation(on bool) {
	s.fapi.mu.Lock()
	s.fapi.noRotation = !on
	s.fapi.mu.Unlock()
}

// WithdrawFAPIGrants revokes every grant of user, with all its tokens, as
// when the user withdraws consent at the bank, and returns how many.
func (s *Server) WithdrawFAPIGrants(user string) int {
	s.fapi.mu.Lock()
	defer s.fapi.mu.Unlock()
	n := 0
	for _, g := range s.fapi.grants {
		if g.user == user {
			s.fapi.revokeGrant(g)
			n++
		}
	}
	s.fapi.stats.Withdrawals += n
	return n
}

// FAPIGrant describes a live grant (no token or code).
type FAPIGrant struct {
	User                 string    `json:"user"`
	ClientID             string    `json:"client_id"`
	Scope                string    `json:"scope"`
	AuthorizationDetails any       `json:"authorization_details,omitempty"`
	CreatedAt            time.Time `json:"created_at"`
	ExpiresAt            time.Time `json:"expires_at"`
}

// FAPIGrants lists the live grants, oldest first (then by user).
func (s *Server) FAPIGrants() []FAPIGrant {
	now := s.now()
	s.fapi.mu.Lock()
	defer s.fapi.mu.Unlock()
	s.fapi.sweep(now)
	out := make([]FAPIGrant, 0, len(s.fapi.grants))
	for _, g := range s.fapi.grants {
		fg := FAPIGrant{User: g.user, ClientID: g.clientID, Scope: g.scope, CreatedAt: g.created, ExpiresAt: g.exp}
		if len(g.details) > 0 {
			fg.AuthorizationDetails = g.details
		}
		out = append(out, fg)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].User+"\x00"+out[i].ClientID < out[j].User+"\x00"+out[j].ClientID
	})
	return out
}

// FAPIStats returns the authorization server's counters.
func (s *Server) FAPIStats() FAPIStats {
	s.fapi.mu.Lock()
	out := s.fapi.stats
	s.fapi.mu.Unlock()
	st := s.Stats(FAPI)
	out.Failed, out.Total = st.Failed, st.Total
	return out
}

// FAPIAccessTokenValid reports whether accessToken was issued by the
// authorization server, is not revoked and has not expired, and returns
// the RFC 7638 thumbprint of the DPoP key it is bound to.
func (s *Server) FAPIAccessTokenValid(accessToken string) (jkt string, ok bool) {
	now := s.now()
	s.fapi.mu.Lock()
	defer s.fapi.mu.Unlock()
	a := s.fapi.access[accessToken]
	if a == nil || !now.Before(a.exp) {
		return "", false
	}
	return a.jkt, true
}

// fapiSecrets lists the outstanding codes, request URIs and tokens.
func (s *Server) fapiSecrets() []string {
	s.fapi.mu.Lock()
	defer s.fapi.mu.Unlock()
	out := slices.Collect(maps.Keys(s.fapi.codes))
	out = slices.AppendSeq(out, maps.Keys(s.fapi.requests))
	out = slices.AppendSeq(out, maps.Keys(s.fapi.access))
	return slices.AppendSeq(out, maps.Keys(s.fapi.refresh))
}
