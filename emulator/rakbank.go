package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	uuid "github.com/hashicorp/go-uuid"
)

type rakbankTokenResponse struct {
	TokenType   string `json:"token_type"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// rakbankToken serves POST /v1/partner_auth/token: X-IBM-Client-Id/Secret
// headers, a UUID MsgId header (replays refused), and a JSON body with only
// grant_type, scope and oauth_metadata (additionalProperties: false).
func (s *Server) rakbankToken(w http.ResponseWriter, r *http.Request, body []byte) {
	h := r.Header
	if !eq(h.Get("X-IBM-Client-Id"), s.creds.ClientID) || !eq(h.Get("X-IBM-Client-Secret"), s.creds.ClientSecret) {
		s.fail(w, Rakbank, http.StatusUnauthorized, "INVALID_CLIENT", "Client id or secret missing or invalid")
		return
	}
	msgID := h.Get("MsgId")
	if _, err := uuid.ParseUUID(msgID); msgID == "" || len(msgID) > 50 || err != nil {
		s.fail(w, Rakbank, http.StatusBadRequest, "INVALID_MSGID", "MsgId header is required: a UUID of at most 50 characters")
		return
	}
	var replay bool
	s.mu.Lock()
	if _, replay = s.seenMsgIDs[msgID]; !replay {
		s.seenMsgIDs[msgID] = struct{}{}
	}
	s.mu.Unlock()
	if replay {
		s.fail(w, Rakbank, http.StatusForbidden, "DUPLICATE_MSGID", "MsgId has already been used")
		return
	}
	if ct := h.Get("Content-Type"); ct != "" && !mediaTypeIs(ct, "application/json") {
		s.fail(w, Rakbank, http.StatusUnsupportedMediaType, "", "Content-Type must be application/json")
		return
	}
	if !acceptsJSON(h.Get("Accept"), true) {
		s.fail(w, Rakbank, http.StatusNotAcceptable, "", "Accept must allow application/json")
		return
	}
	scope, problem := rakbankValidate(body)
	if problem != "" {
		s.fail(w, Rakbank, http.StatusBadRequest, "INVALID_REQUEST", problem)
		return
	}
	is := s.issue(Rakbank, "", false, false, nil)
	writeJSON(w, http.StatusOK, rakbankTokenResponse{TokenType: "bearer", AccessToken: is.access, ExpiresIn: seconds(is.ttl), Scope: scope})
}

// rakbankValidate checks the body against the seed's JSON schema and returns
// the scope, or a description of what is wrong.
func rakbankValidate(body []byte) (scope, problem string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return "", "Request body must be a JSON object"
	}
	for k := range fields {
		if k != "grant_type" && k != "scope" && k != "oauth_metadata" {
			return "", "Additional property " + k + " is not allowed"
		}
	}
	var grantType string
	if raw, ok := fields["grant_type"]; !ok || json.Unmarshal(raw, &grantType) != nil || grantType != "client_credentials" {
		return "", "grant_type is required and must be \"client_credentials\""
	}
	if raw, ok := fields["scope"]; !ok || json.Unmarshal(raw, &scope) != nil {
		return "", "scope is required and must be a string"
	}
	if n := utf8.RuneCountInString(scope); n < 1 || n > 500 {
		return "", "scope must be 1 to 500 characters"
	}
	if raw, ok := fields["oauth_metadata"]; ok {
		var md map[string]any
		if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) || json.Unmarshal(raw, &md) != nil {
			return "", "oauth_metadata must be an object"
		}
	}
	return scope, ""
}
