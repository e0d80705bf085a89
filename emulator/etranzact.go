package emulator

import (
	"encoding/json"
	"net/http"
)

type etranzactTokenResponse struct {
	AccessToken      string  `json:"access_token"`
	ExpiresIn        int64   `json:"expires_in"`
	RefreshExpiresIn int64   `json:"refresh_expires_in"`
	TokenType        string  `json:"token_type"`
	IDToken          *string `json:"id_token"`
	NotBeforePolicy  int64   `json:"not-before-policy"`
	SessionState     string  `json:"session_state"`
	Scope            string  `json:"scope"`
	RefreshToken     string  `json:"refresh_token"`
}

// etranzactToken serves POST /auth/token: a JSON body {"username","password"}
// logs in; {"refresh_token","grant_type":"refresh_token"} refreshes (the seed
// says grant_type "defaults to" refresh_token, so a body with only
// refresh_token refreshes too). Refresh tokens are single-use and rotate.
func (s *Server) etranzactToken(w http.ResponseWriter, r *http.Request, body []byte) {
	if !mediaTypeIs(r.Header.Get("Content-Type"), "application/json") {
		s.fail(w, Etranzact, http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/json")
		return
	}
	var req struct {
		Username     string `json:"username"`
		Password     string `json:"password"`
		GrantType    string `json:"grant_type"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.fail(w, Etranzact, http.StatusBadRequest, "invalid_request", "Malformed JSON body")
		return
	}
	isRefresh := req.GrantType == "refresh_token" || (req.GrantType == "" && req.RefreshToken != "" && req.Username == "")
	switch {
	case isRefresh:
		if req.RefreshToken == "" {
			s.fail(w, Etranzact, http.StatusBadRequest, "invalid_request", "Missing parameter: refresh_token")
			return
		}
		if _, ok, expired := s.useRefresh(Etranzact, req.RefreshToken); !ok {
			s.fail(w, Etranzact, http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
			return
		} else if expired {
			s.fail(w, Etranzact, http.StatusBadRequest, "invalid_grant", "Token is not active")
			return
		}
	case req.GrantType != "":
		s.fail(w, Etranzact, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
		return
	case req.Username == "" || req.Password == "":
		s.fail(w, Etranzact, http.StatusBadRequest, "invalid_request", "Missing parameter: username or password")
		return
	case !eq(req.Username, s.creds.Username) || !eq(req.Password, s.creds.Password):
		s.fail(w, Etranzact, http.StatusUnauthorized, "invalid_grant", "Invalid user credentials")
		return
	}
	is := s.issue(Etranzact, "", true, isRefresh, nil)
	writeJSON(w, http.StatusOK, etranzactTokenResponse{
		AccessToken: is.access, ExpiresIn: seconds(is.ttl), RefreshExpiresIn: seconds(is.refreshTTL),
		TokenType: "bearer", NotBeforePolicy: s.notBefore, RefreshToken: is.refresh,
	})
}
