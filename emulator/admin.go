package emulator

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// serveAdmin serves the JSON control endpoints under /_emulator/:
//
//	GET  /_emulator/stats    {"isbank":{"codes":..,"logins":..,...},...}
//	POST /_emulator/fail     {"provider","count"(-1 = until cleared; omitted = 1),"status","body","headers":{k:v},"delay_ms",
//	                          "body_bytes" (pad the body to this size),"dribble_ms" (send the body a byte at a time),
//	                          "path" (only requests on this path fail),"consume" (handle the request, then fail)}
//	POST /_emulator/ttl      {"provider","seconds"}
//	POST /_emulator/latency  {"provider","ms"}
//	POST /_emulator/reset
//	POST /_emulator/clear
//
// "provider" may also be "fapi", the authorization server, whose own
// endpoints are under /_emulator/fapi/ (see serveFAPIAdmin).
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, fapiAdminPrefix) {
		s.serveFAPIAdmin(w, r)
		return
	}
	op := r.URL.Path[len(AdminPrefix):]
	want := http.MethodPost
	if op == "stats" {
		want = http.MethodGet
	}
	if !slices.Contains([]string{"stats", "fail", "ttl", "latency", "reset", "clear"}, op) {
		http.NotFound(w, r)
		return
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use " + want})
		return
	}
	var req struct {
		Provider string            `json:"provider"`
		Count    *int              `json:"count"`
		Status   int               `json:"status"`
		Body     string            `json:"body"`
		Headers  map[string]string `json:"headers"`
		DelayMS  int64             `json:"delay_ms"`
		BodySize int               `json:"body_bytes"`
		Dribble  int64             `json:"dribble_ms"`
		Path     string            `json:"path"`
		Consume  bool              `json:"consume"`
		Seconds  float64           `json:"seconds"`
		MS       int64             `json:"ms"`
	}
	if op == "fail" || op == "ttl" || op == "latency" {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed JSON body"})
			return
		}
		if !slices.Contains(Providers, req.Provider) && req.Provider != FAPI {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unknown provider", "providers": Providers})
			return
		}
	}
	switch op {
	case "stats":
		out := map[string]Stats{}
		for _, p := range Providers {
			out[p] = s.Stats(p)
		}
		writeJSON(w, http.StatusOK, out)
		return
	case "fail":
		n := 1
		if req.Count != nil {
			n = *req.Count
		}
		f := Failure{Status: req.Status, Body: req.Body, Delay: time.Duration(req.DelayMS) * time.Millisecond, Header: http.Header{},
			BodyBytes: req.BodySize, Dribble: time.Duration(req.Dribble) * time.Millisecond, Path: req.Path, Consume: req.Consume}
		for k, v := range req.Headers {
			f.Header.Set(k, v)
		}
		s.FailNext(req.Provider, n, f)
	case "ttl":
		s.SetTTL(req.Provider, time.Duration(req.Seconds*float64(time.Second)))
	case "latency":
		s.SetLatency(req.Provider, time.Duration(req.MS)*time.Millisecond)
	case "reset":
		s.Reset()
	case "clear":
		s.ClearFailures()
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
