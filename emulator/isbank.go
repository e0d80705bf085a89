package emulator

import (
	"net/http"
	"net/url"
	"strings"
)

// isbankCode serves GET /api/v1/s2s-oauth2/code: service account and IBM
// client headers, scope as a header; answers {"code": ...}.
func (s *Server) isbankCode(w http.ResponseWriter, r *http.Request, _ []byte) {
	h, c := r.Header, s.creds
	if !eq(h.Get("X-Service-Account-ID"), c.ServiceAccountID) || !eq(h.Get("X-Service-Account-Secret"), c.ServiceAccountSecret) ||
		!eq(h.Get("X-IBM-client-id"), c.ClientID) || !eq(h.Get("X-IBM-client-secret"), c.ClientSecret) {
		s.fail(w, Isbank, http.StatusUnauthorized, "", "Invalid service account or client credentials")
		return
	}
	scope := strings.TrimSpace(h.Get("scope"))
	if scope == "" {
		s.fail(w, Isbank, http.StatusBadRequest, "", "The scope header is required")
		return
	}
	code := randString(64)
	exp := s.now().Add(codeTTL)
	s.with(Isbank, func(st *providerState) {
		st.codes[code] = grant{scope, exp}
		st.stats.Codes++
	})
	writeJSON(w, http.StatusOK, map[string]string{"code": code})
}

type isbankTokenResponse struct {
	TokenType             string `json:"token_type"`
	AccessToken           string `json:"access_token"`
	ExpiresIn             int64  `json:"expires_in"`
	ConsentedOn           int64  `json:"consented_on"`
	Scope                 string `json:"scope"`
	RefreshToken          string `json:"refresh_token"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
}

// isbankToken serves GET /api/v1/s2s-oauth2/token: raw Basic auth, a form
// body with grant_type=authorization_code (single-use code) or, by IBM API
// Connect convention, grant_type=refresh_token (single-use, rotating).
func (s *Server) isbankToken(w http.ResponseWriter, r *http.Request, body []byte) {
	id, secret, ok := r.BasicAuth() // raw base64(id:secret), no URL-decoding
	if !ok || !eq(id, s.creds.ClientID) || !eq(secret, s.creds.ClientSecret) {
		s.fail(w, Isbank, http.StatusUnauthorized, "", "Invalid client id or secret")
		return
	}
	if !mediaTypeIs(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.fail(w, Isbank, http.StatusUnsupportedMediaType, "", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if !acceptsJSON(r.Header.Get("Accept"), false) {
		s.fail(w, Isbank, http.StatusNotAcceptable, "", "Accept must be application/json")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.fail(w, Isbank, http.StatusBadRequest, "invalid_request", "Malformed form body")
		return
	}
	var g grant
	var found, expired, isRefresh bool
	switch form.Get("grant_type") {
	case "authorization_code":
		code := form.Get("code")
		if code == "" {
			s.fail(w, Isbank, http.StatusBadRequest, "invalid_request", "Missing code")
			return
		}
		now := s.now()
		s.with(Isbank, func(st *providerState) {
			g, found = st.codes[code]
			delete(st.codes, code) // single-use
		})
		expired = found && !now.Before(g.exp)
	case "refresh_token":
		rt := form.Get("refresh_token")
		if rt == "" {
			s.fail(w, Isbank, http.StatusBadRequest, "invalid_request", "Missing refresh_token")
			return
		}
		g, found, expired = s.useRefresh(Isbank, rt)
		isRefresh = true
	case "":
		s.fail(w, Isbank, http.StatusBadRequest, "invalid_request", "Missing grant_type")
		return
	default:
		s.fail(w, Isbank, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
		return
	}
	if !found || expired {
		s.fail(w, Isbank, http.StatusBadRequest, "invalid_grant", "The grant is invalid, expired or already used")
		return
	}
	is := s.issue(Isbank, g.scope, true, isRefresh, nil)
	writeJSON(w, http.StatusOK, isbankTokenResponse{
		TokenType: "bearer", AccessToken: is.access, ExpiresIn: seconds(is.ttl), ConsentedOn: is.now.Unix(),
		Scope: g.scope, RefreshToken: is.refresh, RefreshTokenExpiresIn: seconds(is.refreshTTL),
	})
}
