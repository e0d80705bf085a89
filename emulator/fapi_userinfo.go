package emulator

import (
	"net/http"
	"strings"
)

// fapiUserInfo serves GET FAPIUserInfoPath, a protected resource taking a
// DPoP-bound access token (RFC 9449 section 7): "Authorization: DPoP
// <token>" and a proof by the token's key with ath. It answers the
// grant's sub, scope and authorization_details. Errors are 401 with a
// WWW-Authenticate DPoP challenge (section 7.1), use_dpop_nonce with a
// DPoP-Nonce (section 9).
func (s *Server) fapiUserInfo(w http.ResponseWriter, r *http.Request, _ []byte) {
	challenge := func(code, desc string, nonce bool) {
		w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`", error_description="`+desc+`", algs="`+strings.Join(fapiAlgNames(), " ")+`"`)
		s.fapiFail(w, &fapiError{status: http.StatusUnauthorized, code: code, desc: desc, nonceNeeded: nonce})
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "DPoP") || token == "" || r.URL.Query().Has("access_token") {
		challenge("invalid_token", "a DPoP-bound access token is required in the Authorization header", false)
		return
	}
	jkt, ferr := s.fapiCheckDPoP(r, true, token)
	if ferr != nil {
		challenge(map[bool]string{true: "use_dpop_nonce", false: "invalid_dpop_proof"}[ferr.nonceNeeded], ferr.desc, ferr.nonceNeeded)
		return
	}
	now := s.now()
	s.fapi.mu.Lock()
	a := s.fapi.access[token]
	var g *fapiGrant
	if a != nil {
		g = s.fapi.grants[a.grant]
	}
	ok := a != nil && g != nil && now.Before(a.exp) && a.jkt == jkt
	if ok {
		s.fapi.stats.UserInfo++
	}
	s.fapi.mu.Unlock()
	if !ok {
		challenge("invalid_token", "the access token is unknown, expired, revoked or bound to another key", false)
		return
	}
	s.setDPoPNonce(w)
	out := map[string]any{"sub": g.user, "scope": g.scope}
	if len(g.details) > 0 {
		out["authorization_details"] = g.details
	}
	writeJSON(w, http.StatusOK, out)
}
