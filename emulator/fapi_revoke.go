package emulator

import "net/http"

// fapiRevoke serves POST FAPIRevokePath (RFC 7009 section 2): client
// authentication, then token. A refresh token ends its whole grant
// (section 2.1: the access tokens of the same grant too); an access token
// ends itself. A token the server does not know is answered 200 like a
// revoked one (section 2.2); one issued to another client is refused.
func (s *Server) fapiRevoke(w http.ResponseWriter, r *http.Request, body []byte) {
	form, ferr := fapiForm(r, body)
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	client, ferr := s.fapiAuthenticate(r, form, s.fapiIssuer(r))
	if ferr != nil {
		s.fapiFail(w, ferr)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		s.fapiFail(w, badRequest("invalid_request", "token is required"))
		return
	}
	s.fapi.mu.Lock()
	grantOf := ""
	rt, isRefresh := s.fapi.refresh[tok]
	at, isAccess := s.fapi.access[tok]
	switch {
	case isRefresh:
		grantOf = rt.grant
	case isAccess:
		grantOf = at.grant
	}
	g := s.fapi.grants[grantOf]
	if g != nil && g.clientID != client.ID {
		s.fapi.mu.Unlock()
		s.fapiFail(w, badRequest("unauthorized_client", "the token was issued to another client"))
		return
	}
	switch {
	case isRefresh && g != nil:
		s.fapi.revokeGrant(g)
	case isRefresh:
		delete(s.fapi.refresh, tok)
	case isAccess:
		delete(s.fapi.access, tok)
	}
	s.fapi.stats.Revocations++
	s.fapi.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
