package emulator

import (
	"encoding/json"
	"net/http"
)

// fapiAdminPrefix prefixes the authorization server's control endpoints.
const fapiAdminPrefix = AdminPrefix + "fapi/"

// serveFAPIAdmin serves the authorization server's JSON control endpoints:
//
//	GET  /_emulator/fapi/stats     {"par","authorizations","denials","exchanges","refreshes","revocations","userinfo",
//	                                "withdrawals","reuse_detected","nonce_challenges","failed","total"}
//	GET  /_emulator/fapi/grants    [{"user","client_id","scope","authorization_details","created_at","expires_at"}]
//	POST /_emulator/fapi/config    {"deny":bool,"user":string,"dpop_nonce":bool,"refresh_rotation":bool}, each optional
//	POST /_emulator/fapi/client    {"client_id","redirect_uris":[...],"jwks_uri"} or {...,"jwks":{"keys":[...]}}
//	POST /_emulator/fapi/withdraw  {"user"} => {"withdrawn":n}: the user withdrew consent at the bank
//
// Faults, latency and the access-token lifetime use the common endpoints
// with "provider":"fapi".
func (s *Server) serveFAPIAdmin(w http.ResponseWriter, r *http.Request) {
	op := r.URL.Path[len(fapiAdminPrefix):]
	methods := map[string]string{"stats": http.MethodGet, "grants": http.MethodGet,
		"config": http.MethodPost, "client": http.MethodPost, "withdraw": http.MethodPost}
	want, ok := methods[op]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use " + want})
		return
	}
	decode := func(v any) bool {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(v); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed JSON body"})
			return false
		}
		return true
	}
	switch op {
	case "stats":
		writeJSON(w, http.StatusOK, s.FAPIStats())
	case "grants":
		writeJSON(w, http.StatusOK, s.FAPIGrants())
	case "config":
		var req struct {
			Deny      *bool   `json:"deny"`
			User      *string `json:"user"`
			DPoPNonce *bool   `json:"dpop_nonce"`
			Rotation  *bool   `json:"refresh_rotation"`
		}
		if !decode(&req) {
			return
		}
		if req.Deny != nil {
			s.SetFAPIDeny(*req.Deny)
		}
		if req.User != nil {
			s.SetFAPIUser(*req.User)
		}
		if req.DPoPNonce != nil {
			s.SetFAPIDPoPNonce(*req.DPoPNonce)
		}
		if req.Rotation != nil {
			s.SetFAPIRefreshRotation(*req.Rotation)
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case "client":
		var c FAPIClient
		if !decode(&c) {
			return
		}
		if err := s.RegisterFAPIClient(c); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case "withdraw":
		var req struct {
			User string `json:"user"`
		}
		if !decode(&req) {
			return
		}
		if req.User == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "user is required"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"withdrawn": s.WithdrawFAPIGrants(req.User)})
	}
}
