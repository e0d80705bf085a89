package emulator

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// fapiTokenResponse is the token endpoint's answer (RFC 6749 section 5.1,
// RFC 9449 section 5, RFC 9396 section 7, OpenID Connect Core 3.1.3.3).
type fapiTokenResponse struct {
	AccessToken           string          `json:"access_token"`
	TokenType             string          `json:"token_type"`
	ExpiresIn             int64           `json:"expires_in"`
	RefreshToken          string          `json:"refresh_token,omitempty"`
	RefreshTokenExpiresIn int64           `json:"refresh_token_expires_in"`
	Scope                 string          `json:"scope"`
	IDToken               string          `json:"id_token,omitempty"`
	AuthorizationDetails  json.RawMessage `json:"authorization_details,omitempty"`
}

// accessClaims are an access token's claims (RFC 9068 with RFC 9449
// section 6.1's cnf).
type accessClaims struct {
	Issuer               string          `json:"iss"`
	Subject              string          `json:"sub"`
	Audience             string          `json:"aud"`
	ClientID             string          `json:"client_id"`
	Scope                string          `json:"scope,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	Confirmation         map[string]any  `json:"cnf"`
	IssuedAt             int64           `json:"iat"`
	Expiry               int64           `json:"exp"`
	ID                   string          `json:"jti"`
}

// idClaims are an ID token's claims (OpenID Connect Core section 2).
type idClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	AuthTime int64  `json:"auth_time"`
	Nonce    string `json:"nonce,omitempty"`
}

// fapiTTL is the access-token lifetime: SetTTL(FAPI, ...) or the
// emulator's TokenTTL.
func (s *Server) fapiTTL() time.Duration {
	ttl := s.ttl
	s.with(FAPI, func(st *providerState) {
		if st.ttl > 0 {
			ttl = st.ttl
		}
	})
	return ttl
}

// fapiToken serves POST FAPITokenPath: a DPoP proof is required (checked
// first, so that a nonce challenge uses up nothing), then client
// authentication, then the grant.
func (s *Server) fapiToken(w http.ResponseWriter, r *http.Request, body []byte) {
	form, ferr := fapiForm(r, body)
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	jkt, ferr := s.fapiCheckDPoP(r, true, "")
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	issuer := s.fapiIssuer(r)
	client, ferr := s.fapiAuthenticate(r, form, issuer)
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	ttl := s.fapiTTL()
	var resp *fapiTokenResponse
	switch form.Get("grant_type") {
	case "authorization_code":
		resp, ferr = s.fapiCodeGrant(client, form, jkt, issuer, ttl)
	case "refresh_token":
		resp, ferr = s.fapiRefreshGrant(client, form, jkt, issuer, ttl)
	default:
		ferr = badRequest("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	s.setDPoPNonce(w)
	writeJSON(w, http.StatusOK, resp)
}

func invalidGrant(desc string) *fapiError { return badRequest("invalid_grant", desc) }

// fapiCodeGrant redeems an authorization code (RFC 6749 section 4.1.3):
// issued to this client and not expired, used once (a replay revokes the
// grant it made, section 10.5), the same redirect_uri, the PKCE verifier
// of the challenge (RFC 7636 section 4.6) and, when the request named
// dpop_jkt, a proof by that key (RFC 9449 section 10).
func (s *Server) fapiCodeGrant(client *fapiClient, form url.Values, jkt, issuer string, ttl time.Duration) (*fapiTokenResponse, *fapiError) {
	now := s.now()
	s.fapi.mu.Lock()
	defer s.fapi.mu.Unlock()
	c := s.fapi.codes[form.Get("code")]
	switch {
	case c == nil || c.req.clientID != client.ID:
		return nil, invalidGrant("the code is unknown, expired or was issued to another client")
	case !now.Before(c.exp):
		return nil, invalidGrant("the code has expired")
	case c.used:
		if g := s.fapi.grants[c.grant]; g != nil {
			s.fapi.revokeGrant(g)
			s.fapi.stats.ReuseDetected++
		}
		return nil, invalidGrant("the code has been used before; the tokens issued from it are revoked")
	}
	c.used = true
	if form.Get("redirect_uri") != c.req.redirectURI {
		return nil, invalidGrant("redirect_uri is not the authorization request's")
	}
	v := form.Get("code_verifier")
	sum := sha256.Sum256([]byte(v))
	if !validVerifier(v) || subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.req.challenge)) != 1 {
		return nil, invalidGrant("code_verifier does not match the code_challenge")
	}
	if c.req.jkt != "" && c.req.jkt != jkt {
		return nil, invalidGrant("the DPoP proof's key is not the one the authorization request's dpop_jkt named")
	}
	g := &fapiGrant{id: randString(16), clientID: client.ID, user: c.req.user, scope: c.req.scope,
		details: c.req.details, created: now, exp: now.Add(s.fapi.opts.GrantTTL)}
	s.fapi.grants[g.id] = g
	c.grant = g.id
	resp, ferr := s.fapi.issue(s, g, g.scope, jkt, issuer, ttl, now, true)
	if ferr != nil {
		return nil, ferr
	}
	if hasScope(g.scope, "openid") {
		idt, err := s.fapiSign("JWT", idClaims{Issuer: issuer, Subject: g.user, Audience: client.ID, IssuedAt: now.Unix(),
			Expiry: now.Add(ttl).Unix(), AuthTime: c.exp.Add(-fapiCodeTTL).Unix(), Nonce: c.req.nonce})
		if err != nil {
			return nil, &fapiError{status: http.StatusInternalServerError, code: "server_error", desc: "cannot sign the ID token"}
		}
		resp.IDToken = idt
	}
	s.fapi.stats.Exchanges++
	return resp, nil
}

// fapiRefreshGrant uses a refresh token (RFC 6749 section 6) with
// rotation: the token is used up and a new one issued; sending a rotated
// one again revokes the whole grant (RFC 9700 section 4.14.2). With
// rotation off, the token stays and the answer has none. A scope, when
// sent, must be within the grant's and narrows the new access token only.
// Refresh tokens of a confidential client are bound to its authentication,
// not to a DPoP key (RFC 9449 section 5): the new access token is bound to
// this request's proof.
func (s *Server) fapiRefreshGrant(client *fapiClient, form url.Values, jkt, issuer string, ttl time.Duration) (*fapiTokenResponse, *fapiError) {
	now := s.now()
	s.fapi.mu.Lock()
	defer s.fapi.mu.Unlock()
	s.fapi.sweep(now)
	e := s.fapi.refresh[form.Get("refresh_token")]
	if e == nil {
		return nil, invalidGrant("the refresh token is unknown, revoked or expired")
	}
	g := s.fapi.grants[e.grant]
	switch {
	case g == nil || g.revoked:
		return nil, invalidGrant("the grant has been revoked")
	case g.clientID != client.ID:
		return nil, invalidGrant("the refresh token was issued to another client")
	case e.rotated:
		s.fapi.revokeGrant(g)
		s.fapi.stats.ReuseDetected++
		return nil, invalidGrant("the refresh token was used before; the grant is revoked")
	}
	scope := g.scope
	if sc := form.Get("scope"); sc != "" {
		for _, x := range strings.Fields(sc) {
			if !hasScope(g.scope, x) {
				return nil, badRequest("invalid_scope", "scope "+x+" was not granted")
			}
		}
		scope = strings.Join(strings.Fields(sc), " ")
	}
	resp, ferr := s.fapi.issue(s, g, scope, jkt, issuer, ttl, now, !s.fapi.noRotation)
	if ferr != nil {
		return nil, ferr
	}
	if !s.fapi.noRotation {
		e.rotated = true
	}
	s.fapi.stats.Refreshes++
	return resp, nil
}

// issue makes an access token bound to jkt and, when withRefresh, a new
// refresh token for g; called with mu held.
func (st *fapiState) issue(s *Server, g *fapiGrant, scope, jkt, issuer string, ttl time.Duration, now time.Time, withRefresh bool) (*fapiTokenResponse, *fapiError) {
	exp := now.Add(ttl)
	at, err := s.fapiSign("at+jwt", accessClaims{Issuer: issuer, Subject: g.user, Audience: issuer, ClientID: g.clientID,
		Scope: scope, AuthorizationDetails: g.details, Confirmation: map[string]any{"jkt": jkt},
		IssuedAt: now.Unix(), Expiry: exp.Unix(), ID: randString(16)})
	if err != nil {
		return nil, &fapiError{status: http.StatusInternalServerError, code: "server_error", desc: "cannot sign the access token"}
	}
	st.access[at] = &fapiAccess{grant: g.id, jkt: jkt, exp: exp}
	var rt string
	if withRefresh {
		rt = "emu-fapi-rt-" + randString(32)
		st.refresh[rt] = &fapiRefresh{grant: g.id}
	}
	return &fapiTokenResponse{AccessToken: at, TokenType: "DPoP", ExpiresIn: seconds(ttl), RefreshToken: rt,
		RefreshTokenExpiresIn: seconds(g.exp.Sub(now)), Scope: scope, AuthorizationDetails: g.details}, nil
}

// revokeGrant ends a grant and every token issued under it; called with
// mu held.
func (st *fapiState) revokeGrant(g *fapiGrant) {
	g.revoked = true
	delete(st.grants, g.id)
	for k, a := range st.access {
		if a.grant == g.id {
			delete(st.access, k)
		}
	}
	for k, r := range st.refresh {
		if r.grant == g.id {
			delete(st.refresh, k)
		}
	}
}

// validVerifier reports whether v is a code verifier RFC 7636 section 4.1
// allows: 43 to 128 characters of ALPHA / DIGIT / "-" / "." / "_" / "~".
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	return strings.IndexFunc(v, func(c rune) bool {
		return !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~')
	}) < 0
}

func hasScope(scope, s string) bool { return slices.Contains(strings.Fields(scope), s) }
