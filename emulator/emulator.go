// Package emulator is an in-process HTTP emulator of the four banks' token
// endpoints that bankauth ships built-in profiles for (see the seed documents):
// İşbank's two-step server-to-server flow, eTranzact AntPeer's JSON login and
// refresh, RAKBANK's partner_auth client_credentials call and Acceleration
// Cloud's query-string client_credentials call. It follows each contract to
// the letter (methods, paths, headers, body encodings, response and error
// shapes) and adds knobs for tests: per-provider token lifetime, latency,
// failure injection, counters and token validity checks.
//
// Under FAPIPrefix it also serves a FAPI 2.0 authorization server for user
// consents (see FAPI and FAPIOptions): PAR, PKCE S256, private_key_jwt,
// DPoP with nonces, RFC 9207 iss, refresh rotation with reuse detection,
// revocation, and a user who approves every request at once, so that the
// consent flow runs in make dev and in tests without a real bank.
package emulator

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Provider names, as used by bankauth's built-in profiles.
const (
	// Isbank is Türkiye İş Bankası's "Server to Server Security" API (seed 000).
	Isbank = "isbank"
	// Etranzact is eTranzact AntPeer's /auth/token API (seed 001).
	Etranzact = "etranzact"
	// Rakbank is RAKBANK's Partner Authentication API (seed 002).
	Rakbank = "rakbank"
	// AccelerationCloud is Acceleration Cloud's user authentication API (seed 003).
	AccelerationCloud = "accelerationcloud"
)

// Providers lists the four names.
var Providers = []string{Isbank, Etranzact, Rakbank, AccelerationCloud}

// Endpoint paths served by the emulator, relative to the server root.
const (
	// IsbankCodePath is İşbank's code request (GET).
	IsbankCodePath = "/api/v1/s2s-oauth2/code"
	// IsbankTokenPath is İşbank's token request (GET with a form body).
	IsbankTokenPath = "/api/v1/s2s-oauth2/token"
	// EtranzactTokenPath is eTranzact's login and refresh endpoint (POST, JSON).
	EtranzactTokenPath = "/auth/token"
	// RakbankTokenPath is RAKBANK's partner_auth token endpoint (POST, JSON).
	RakbankTokenPath = "/v1/partner_auth/token"
	// AccelerationCloudTokenPath is Acceleration Cloud's token endpoint (POST, query string).
	AccelerationCloudTokenPath = "/api/v1/auth/oauth2/token"
	// AdminPrefix prefixes the emulator's own JSON control endpoints.
	AdminPrefix = "/_emulator/"
)

const (
	codeTTL = 60 * time.Second
	maxBody = 1 << 20
)

// Credentials are the values the emulator accepts.
type Credentials struct {
	ClientID, ClientSecret                 string // isbank, rakbank, accelerationcloud (same values for all three)
	ServiceAccountID, ServiceAccountSecret string // isbank
	Username, Password                     string // etranzact
}

// DefaultCredentials returns made-up test values. The client secret holds
// '/', '+' and '=' so that a client which URL-encodes Basic credentials
// (RFC 6749 style) instead of sending them raw is caught.
func DefaultCredentials() Credentials {
	return Credentials{
		ClientID:             "emu-client-id",
		ClientSecret:         "emu-client-secret-4f/9+Zq=",
		ServiceAccountID:     "emu-service-account-id",
		ServiceAccountSecret: "emu-service-account-secret-7Hk2",
		Username:             "emu-user",
		Password:             "emu-password-Xy9!",
	}
}

// Options configure a Server.
type Options struct {
	Credentials Credentials      // zero value (or any empty field) => DefaultCredentials()
	TokenTTL    time.Duration    // default lifetime of access tokens for all providers; 0 => 60s
	RefreshTTL  time.Duration    // etranzact/isbank refresh token lifetime; 0 => 30m
	Now         func() time.Time // optional clock, default time.Now
	FAPI        FAPIOptions      // the FAPI 2.0 authorization server under FAPIPrefix
}

// Failure describes an injected failure answer.
type Failure struct {
	Status int           // HTTP status (0 => 500, or 200 for accelerationcloud); for accelerationcloud 200 models its "errors as HTTP 200"
	Body   string        // raw body; "" => the provider's own error shape for that status
	Header http.Header   // extra headers, e.g. Retry-After, X-RateLimit-Retry-After
	Delay  time.Duration // optional extra delay
	// BodyBytes, when larger than len(Body), pads the raw body with spaces to
	// this many bytes, streamed without holding it in memory (an oversized
	// answer).
	BodyBytes int
	// Dribble, when set, sends the raw body one byte at a time with this
	// pause between bytes, flushing each (a slow-loris answer). The headers
	// go out at once.
	Dribble time.Duration
	// Path, when set, limits the failure to requests on that path (e.g.
	// IsbankTokenPath); requests on the provider's other paths pass.
	Path string
	// Consume makes the emulator handle the request as usual (a code or
	// refresh token is used up, a token issued) and then answer with the
	// failure instead: a gateway that failed after the bank acted.
	Consume bool
}

// Stats are per-provider counters.
type Stats struct {
	Codes     int `json:"codes"`     // isbank code requests that succeeded
	Logins    int `json:"logins"`    // successful token issuances by primary grant
	Refreshes int `json:"refreshes"` // successful refresh grants
	Failed    int `json:"failed"`    // requests answered with an error (incl. injected)
	Total     int `json:"total"`     // all requests to the provider's endpoints
}

// RecordedRequest is a copy of a request received on a token endpoint.
type RecordedRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

type grant struct {
	scope string
	exp   time.Time
}

type pendingFailure struct {
	f Failure
	n int // remaining; <0 => until cleared
}

type providerState struct {
	ttl, latency time.Duration
	failures     []*pendingFailure
	stats        Stats
	last         *RecordedRequest
	access       map[string]time.Time // access token -> expiry
	refresh      map[string]grant     // refresh token -> grant
	codes        map[string]grant     // isbank authorization codes
}

// Server is the emulator. It is an http.Handler; all methods are safe for
// concurrent use.
type Server struct {
	creds           Credentials
	ttl, refreshTTL time.Duration
	now             func() time.Time
	notBefore       int64
	mu              sync.Mutex
	p               map[string]*providerState
	seenMsgIDs      map[string]struct{}
	fapi            *fapiState
}

type route struct {
	provider, method string
	handle           func(s *Server, w http.ResponseWriter, r *http.Request, body []byte)
}

var routes = map[string]route{
	IsbankCodePath:             {Isbank, http.MethodGet, (*Server).isbankCode},
	IsbankTokenPath:            {Isbank, http.MethodGet, (*Server).isbankToken},
	EtranzactTokenPath:         {Etranzact, http.MethodPost, (*Server).etranzactToken},
	RakbankTokenPath:           {Rakbank, http.MethodPost, (*Server).rakbankToken},
	AccelerationCloudTokenPath: {AccelerationCloud, http.MethodPost, (*Server).accelerationCloudToken},
	FAPIOAuthMetadataPath:      {FAPI, http.MethodGet, (*Server).fapiDiscovery},
	FAPIOIDCMetadataPath:       {FAPI, http.MethodGet, (*Server).fapiDiscovery},
	FAPIJWKSPath:               {FAPI, http.MethodGet, (*Server).fapiJWKS},
	FAPIPARPath:                {FAPI, http.MethodPost, (*Server).fapiPAR},
	FAPIAuthorizePath:          {FAPI, http.MethodGet, (*Server).fapiAuthorize},
	FAPITokenPath:              {FAPI, http.MethodPost, (*Server).fapiToken},
	FAPIRevokePath:             {FAPI, http.MethodPost, (*Server).fapiRevoke},
	FAPIUserInfoPath:           {FAPI, http.MethodGet, (*Server).fapiUserInfo},
}

// ProviderForPath returns the provider served at path, "admin" for the
// control endpoints, or "" for an unknown path (useful for request logs).
func ProviderForPath(path string) string {
	if strings.HasPrefix(path, AdminPrefix) {
		return "admin"
	}
	return routes[path].provider
}

// New returns an emulator configured by opts.
func New(opts Options) *Server {
	d, c := DefaultCredentials(), opts.Credentials
	for _, f := range []struct {
		v   *string
		def string
	}{
		{&c.ClientID, d.ClientID}, {&c.ClientSecret, d.ClientSecret},
		{&c.ServiceAccountID, d.ServiceAccountID}, {&c.ServiceAccountSecret, d.ServiceAccountSecret},
		{&c.Username, d.Username}, {&c.Password, d.Password},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	s := &Server{creds: c, ttl: opts.TokenTTL, refreshTTL: opts.RefreshTTL, now: opts.Now, p: map[string]*providerState{}}
	if s.ttl <= 0 {
		s.ttl = 60 * time.Second
	}
	if s.refreshTTL <= 0 {
		s.refreshTTL = 30 * time.Minute
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.notBefore = s.now().Unix()
	for _, name := range Providers {
		s.p[name] = &providerState{}
	}
	s.p[FAPI] = &providerState{}
	s.fapi = newFAPIState(opts.FAPI)
	s.Reset()
	return s
}

// ServeHTTP routes the four providers' endpoints, the FAPI authorization
// server's and the admin endpoints.
// Unknown paths get 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, AdminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	rt, ok := routes[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	s.mu.Lock()
	st := s.p[rt.provider]
	st.stats.Total++
	st.last = &RecordedRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: append([]byte(nil), body...)}
	latency := st.latency
	s.mu.Unlock()

	if !sleep(r.Context(), latency) {
		return // client gone
	}
	if f, ok := s.takeFailure(rt.provider, r.URL.Path); ok {
		if !sleep(r.Context(), f.Delay) {
			return
		}
		if f.Consume && r.Method == rt.method && readErr == nil {
			rt.handle(s, httptest.NewRecorder(), r, body)
		}
		s.writeInjected(w, rt.provider, f)
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		s.fail(w, rt.provider, http.StatusMethodNotAllowed, "", "method "+r.Method+" not allowed, use "+rt.method)
		return
	}
	if readErr != nil {
		s.fail(w, rt.provider, http.StatusBadRequest, "invalid_request", "request body unreadable or too large")
		return
	}
	rt.handle(s, w, r, body)
}

// SetTTL sets the access-token lifetime of provider; d <= 0 restores the default.
func (s *Server) SetTTL(provider string, d time.Duration) {
	s.with(provider, func(st *providerState) { st.ttl = d })
}

// SetLatency delays every answer of provider's token (and code) endpoints by d.
// The wait ends early when the client goes away.
func (s *Server) SetLatency(provider string, d time.Duration) {
	s.with(provider, func(st *providerState) { st.latency = d })
}

// FailNext makes the next n requests to provider's endpoints (for isbank: the
// code or the token step) answer with f; n < 0 means until ClearFailures.
// Calls queue up: a later FailNext applies once earlier ones are used up.
func (s *Server) FailNext(provider string, n int, f Failure) {
	if n == 0 {
		return
	}
	f.Header = f.Header.Clone()
	s.with(provider, func(st *providerState) { st.failures = append(st.failures, &pendingFailure{f, n}) })
}

// ClearFailures drops all pending injected failures.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.p {
		st.failures = nil
	}
}

// Reset clears counters, failures, latency, last requests, seen RAKBANK MsgIds
// and all issued codes and tokens. Per-provider TTLs set by SetTTL are kept.
// The FAPI authorization server forgets its requests, grants and tokens and
// returns to its options' user, deny knob and DPoP nonce setting; registered
// clients are kept.
func (s *Server) Reset() {
	s.fapi.reset()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.p {
		*st = providerState{ttl: st.ttl, access: map[string]time.Time{}, refresh: map[string]grant{}, codes: map[string]grant{}}
	}
	s.seenMsgIDs = map[string]struct{}{}
}

// Stats returns provider's counters (zero for an unknown provider).
func (s *Server) Stats(provider string) Stats {
	var out Stats
	s.with(provider, func(st *providerState) { out = st.stats })
	return out
}

// TokenValid reports whether accessToken was issued by this emulator for
// provider and has not expired.
func (s *Server) TokenValid(provider, accessToken string) bool {
	exp, ok := s.TokenExpiry(provider, accessToken)
	return ok && s.now().Before(exp)
}

// TokenExpiry returns when an issued token expires (ok=false if unknown).
func (s *Server) TokenExpiry(provider, accessToken string) (exp time.Time, ok bool) {
	s.with(provider, func(st *providerState) { exp, ok = st.access[accessToken] })
	return exp, ok
}

// LastRequest returns a copy of the last request received on the provider's
// token endpoint (for isbank: last of either step).
func (s *Server) LastRequest(provider string) (RecordedRequest, bool) {
	var out RecordedRequest
	var ok bool
	s.with(provider, func(st *providerState) {
		if st.last != nil {
			out, ok = *st.last, true
			out.Header, out.Body = st.last.Header.Clone(), append([]byte(nil), st.last.Body...)
		}
	})
	return out, ok
}

func (s *Server) with(provider string, f func(*providerState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.p[provider]; ok {
		f(st)
	}
}

func (s *Server) takeFailure(provider, path string) (f Failure, ok bool) {
	s.with(provider, func(st *providerState) {
		if len(st.failures) == 0 {
			return
		}
		head := st.failures[0]
		if head.f.Path != "" && head.f.Path != path {
			return
		}
		f, ok = head.f, true
		if head.n > 0 {
			if head.n--; head.n == 0 {
				st.failures = st.failures[1:]
			}
		}
	})
	return f, ok
}

func (s *Server) count(provider string, f func(*Stats)) {
	s.with(provider, func(st *providerState) { f(&st.stats) })
}

// issued is the result of a successful grant.
type issued struct {
	access, refresh string
	now             time.Time
	ttl, refreshTTL time.Duration
}

// issue mints an access token (with mint, or a random one), optionally a
// refresh token bound to scope, records them and bumps the counter.
func (s *Server) issue(provider, scope string, withRefresh, isRefresh bool, mint func(now, exp time.Time) string) issued {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.p[provider]
	is := issued{now: now, ttl: st.ttl}
	if is.ttl <= 0 {
		is.ttl = s.ttl
	}
	exp := now.Add(is.ttl)
	if mint == nil {
		is.access = "emu-" + provider + "-" + randString(32)
	} else {
		is.access = mint(now, exp)
	}
	st.access[is.access] = exp
	if withRefresh {
		is.refresh, is.refreshTTL = "emu-"+provider+"-rt-"+randString(32), s.refreshTTL
		st.refresh[is.refresh] = grant{scope, now.Add(s.refreshTTL)}
	}
	if isRefresh {
		st.stats.Refreshes++
	} else {
		st.stats.Logins++
	}
	return is
}

// useRefresh consumes a single-use refresh token; ok=false if unknown, expired=true if past its life.
func (s *Server) useRefresh(provider, token string) (g grant, ok, expired bool) {
	now := s.now()
	s.with(provider, func(st *providerState) {
		g, ok = st.refresh[token]
		delete(st.refresh, token)
	})
	return g, ok, ok && !now.Before(g.exp)
}

// fail answers a request with the provider's error shape and counts it.
func (s *Server) fail(w http.ResponseWriter, provider string, status int, code, msg string) {
	s.count(provider, func(st *Stats) { st.Failed++ })
	httpStatus := status
	if provider == AccelerationCloud {
		httpStatus = http.StatusOK // "we will respond 2xx in the HTTP status code"
	}
	writeJSON(w, httpStatus, errorBody(provider, status, code, msg))
}

func (s *Server) writeInjected(w http.ResponseWriter, provider string, f Failure) {
	s.count(provider, func(st *Stats) { st.Failed++ })
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
		if provider == AccelerationCloud {
			f.Status = http.StatusOK
		}
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if f.Body != "" {
		if w.Header().Get("Content-Type") == "" {
			ct := "text/plain; charset=utf-8"
			if b := strings.TrimSpace(f.Body); strings.HasPrefix(b, "{") || strings.HasPrefix(b, "[") {
				ct = "application/json"
			}
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(f.Status)
		writeBody(w, f)
		return
	}
	logical := f.Status
	if provider == AccelerationCloud && logical < 300 {
		logical = http.StatusBadRequest // the platform's documented "Fail Response"
	}
	writeJSON(w, f.Status, errorBody(provider, logical, "", ""))
}

type ibmError struct {
	HTTPCode        string `json:"httpCode"`
	HTTPMessage     string `json:"httpMessage"`
	MoreInformation string `json:"moreInformation"`
}

type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

type rakbankError struct {
	Status          string `json:"status"`
	ResponseCode    string `json:"response_code"`
	ResponseMessage string `json:"response_message"`
	Description     string `json:"description"`
}

type accelerationCloudError struct {
	Code         int     `json:"code"`
	ErrorMessage string  `json:"errorMessage"`
	Error        *string `json:"error"`
	Data         any     `json:"data"`
}

// errorBody renders the provider's error shape. code is an OAuth error code
// (isbank grant errors, etranzact) or a RAKBANK response_code; "" derives one.
func errorBody(provider string, status int, code, msg string) any {
	text := http.StatusText(status)
	switch provider {
	case Isbank:
		if code != "" {
			return oauthError{code, msg}
		}
		return ibmError{strconv.Itoa(status), text, orDefault(msg, text)}
	case Etranzact, FAPI:
		return oauthError{orDefault(code, oauthCode(status)), orDefault(msg, text)}
	case Rakbank:
		if code == "" || strings.ToLower(code) == code { // OAuth-style codes don't fit RAKBANK's upper-case codes
			code = strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(text))
		}
		return rakbankError{strconv.Itoa(status), code, text, orDefault(msg, text)}
	default: // AccelerationCloud's unified error model
		if msg == "" {
			msg = strings.ToLower(text)
			if status == http.StatusBadRequest {
				msg = "authentication failed"
			}
		}
		return accelerationCloudError{Code: status, ErrorMessage: msg}
	}
}

func oauthCode(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_grant"
	case status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request"
	}
}

// writeBody sends an injected raw body, padded to f.BodyBytes and dribbled
// byte by byte when f.Dribble is set.
func writeBody(w http.ResponseWriter, f Failure) {
	pad := max(f.BodyBytes-len(f.Body), 0)
	if f.Dribble <= 0 {
		io.WriteString(w, f.Body)
		chunk := []byte(strings.Repeat(" ", 32<<10))
		for pad > 0 {
			n := min(pad, len(chunk))
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			pad -= n
		}
		return
	}
	flusher, _ := w.(http.Flusher)
	body := f.Body + strings.Repeat(" ", min(pad, 1<<16)) // dribbling 64 KiB already takes long
	for i := 0; i < len(body); i++ {
		if _, err := w.Write([]byte{body[i]}); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		time.Sleep(f.Dribble)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func randString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// eq compares a presented secret with the expected one in constant time.
func eq(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// mediaTypeIs reports whether a Content-Type header value is want (parameters ignored).
func mediaTypeIs(header, want string) bool {
	mt, _, err := mime.ParseMediaType(header)
	return err == nil && mt == want
}

// acceptsJSON reports whether an Accept header allows application/json;
// an empty header does only when optional.
func acceptsJSON(header string, optional bool) bool {
	if strings.TrimSpace(header) == "" {
		return optional
	}
	for _, part := range strings.Split(header, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/json", "application/*", "*/*":
			return true
		}
	}
	return false
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
