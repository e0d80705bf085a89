package emulator

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"
)

type accelerationCloudTokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// accelerationCloudToken serves POST
// /api/v1/auth/oauth2/token?grant_type=client_credentials&user_id=...
// with raw Basic auth. Errors are HTTP 200 with the unified error model.
func (s *Server) accelerationCloudToken(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	id, secret, ok := r.BasicAuth()
	switch {
	case !ok || !eq(id, s.creds.ClientID) || !eq(secret, s.creds.ClientSecret):
		s.fail(w, AccelerationCloud, http.StatusBadRequest, "", "authentication failed")
		return
	case q.Get("grant_type") != "client_credentials":
		s.fail(w, AccelerationCloud, http.StatusBadRequest, "", "grant_type must be client_credentials")
		return
	case q.Get("user_id") == "":
		s.fail(w, AccelerationCloud, http.StatusBadRequest, "", "user_id is required")
		return
	case !acceptsJSON(r.Header.Get("Accept"), true):
		s.fail(w, AccelerationCloud, http.StatusNotAcceptable, "", "Accept must allow application/json")
		return
	}
	userID := q.Get("user_id")
	is := s.issue(AccelerationCloud, "", false, false, func(now, exp time.Time) string {
		return fakeJWT(map[string]any{
			"ver": 1, "jti": "emu-" + AccelerationCloud + "-" + randString(24), "iss": "https://bankemu.invalid/oauth2/emu",
			"aud": "api://tenant", "iat": now.Unix(), "exp": exp.Unix(), "cid": id, "uid": userID, "sub": userID, "scp": []string{"openid"},
		})
	})
	writeJSON(w, http.StatusOK, accelerationCloudTokenResponse{AccessToken: is.access, TokenType: "bearer", ExpiresIn: seconds(is.ttl)})
}

// fakeJWT builds an Okta-looking RS256 JWT with a random (unverifiable) signature.
func fakeJWT(claims map[string]any) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"kid": "bankemu", "alg": "RS256"})
	payload, _ := json.Marshal(claims)
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + randString(256)
}
