package emulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	uuid "github.com/hashicorp/go-uuid"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	s     *Server
	url   string
	creds Credentials
	clock *fakeClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := New(Options{Now: clock.Now})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &env{t: t, s: s, url: ts.URL, creds: DefaultCredentials(), clock: clock}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic map.
func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func (e *env) do(method, path string, header map[string]string, body string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func wantKeys(t *testing.T, m map[string]any, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keys(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys = %v, want %v (body %v)", got, want, m)
	}
}

func wantStatus(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
}

// ---- isbank ----

func (e *env) isbankCodeHeaders() map[string]string {
	return map[string]string{
		"X-Service-Account-ID": e.creds.ServiceAccountID, "X-Service-Account-Secret": e.creds.ServiceAccountSecret,
		"X-IBM-client-id": e.creds.ClientID, "X-IBM-client-secret": e.creds.ClientSecret,
		"scope": "read:accounts all:remittance all:eft",
	}
}

func (e *env) isbankTokenHeaders() map[string]string {
	return map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
		"Authorization": basic(e.creds.ClientID, e.creds.ClientSecret),
	}
}

func (e *env) isbankCode() string {
	e.t.Helper()
	r := e.do("GET", IsbankCodePath, e.isbankCodeHeaders(), "")
	wantStatus(e.t, r, 200)
	m := r.json(e.t)
	wantKeys(e.t, m, "code")
	return m["code"].(string)
}

func TestIsbankFlow(t *testing.T) {
	e := newEnv(t)
	code := e.isbankCode()
	if code == "" || url.QueryEscape(code) != code {
		t.Fatalf("code %q is not URL-safe", code)
	}
	r := e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=authorization_code&code="+code)
	wantStatus(t, r, 200)
	m := r.json(t)
	wantKeys(t, m, "token_type", "access_token", "expires_in", "consented_on", "scope", "refresh_token", "refresh_token_expires_in")
	if m["token_type"] != "bearer" || m["scope"] != "read:accounts all:remittance all:eft" || m["expires_in"] != 60.0 ||
		m["consented_on"] != float64(e.clock.Now().Unix()) || m["refresh_token_expires_in"] != 1800.0 {
		t.Fatalf("unexpected token response %v", m)
	}
	at := m["access_token"].(string)
	if !strings.HasPrefix(at, "emu-isbank-") || !e.s.TokenValid(Isbank, at) || e.s.TokenValid(Etranzact, at) {
		t.Fatalf("token %q not valid for isbank only", at)
	}
	// The code is single-use.
	r = e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=authorization_code&code="+code)
	wantStatus(t, r, 400)
	if m := r.json(t); m["error"] != "invalid_grant" {
		t.Fatalf("reused code: %v", m)
	}
	// Refresh grant rotates the single-use refresh token and keeps the scope.
	rt := m["refresh_token"].(string)
	r = e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=refresh_token&refresh_token="+url.QueryEscape(rt))
	wantStatus(t, r, 200)
	m2 := r.json(t)
	if m2["refresh_token"] == rt || m2["access_token"] == at || m2["scope"] != m["scope"] {
		t.Fatalf("refresh did not rotate: %v", m2)
	}
	wantStatus(t, e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=refresh_token&refresh_token="+url.QueryEscape(rt)), 400)
	if st := e.s.Stats(Isbank); st != (Stats{Codes: 1, Logins: 1, Refreshes: 1, Failed: 2, Total: 5}) {
		t.Fatalf("stats = %+v", st)
	}
	last, ok := e.s.LastRequest(Isbank)
	if !ok || last.Method != "GET" || last.Path != IsbankTokenPath || !strings.Contains(string(last.Body), "grant_type=refresh_token") {
		t.Fatalf("last request %+v", last)
	}
}

func TestIsbankCodeExpires(t *testing.T) {
	e := newEnv(t)
	code := e.isbankCode()
	e.clock.Advance(61 * time.Second)
	wantStatus(t, e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=authorization_code&code="+code), 400)
}

func TestIsbankErrors(t *testing.T) {
	e := newEnv(t)
	for _, h := range []string{"X-Service-Account-ID", "X-Service-Account-Secret", "X-IBM-client-id", "X-IBM-client-secret"} {
		hdr := e.isbankCodeHeaders()
		hdr[h] = "wrong"
		r := e.do("GET", IsbankCodePath, hdr, "")
		wantStatus(t, r, 401)
		m := r.json(t)
		wantKeys(t, m, "httpCode", "httpMessage", "moreInformation")
		if m["httpCode"] != "401" || m["httpMessage"] != "Unauthorized" {
			t.Fatalf("error shape %v", m)
		}
	}
	hdr := e.isbankCodeHeaders()
	delete(hdr, "scope")
	wantStatus(t, e.do("GET", IsbankCodePath, hdr, ""), 400)
	// Header names are case-insensitive.
	lower := map[string]string{}
	for k, v := range e.isbankCodeHeaders() {
		lower[strings.ToLower(k)] = v
	}
	wantStatus(t, e.do("GET", IsbankCodePath, lower, ""), 200)

	r := e.do("POST", IsbankCodePath, e.isbankCodeHeaders(), "")
	wantStatus(t, r, 405)
	if r.json(t)["httpCode"] != "405" || r.header.Get("Allow") != "GET" {
		t.Fatalf("405 shape %s %v", r.body, r.header)
	}
	wantStatus(t, e.do("POST", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=authorization_code&code=x"), 405)

	code := e.isbankCode()
	cases := []struct {
		name   string
		edit   func(map[string]string)
		body   string
		status int
	}{
		{"no auth", func(h map[string]string) { delete(h, "Authorization") }, "", 401},
		{"wrong secret", func(h map[string]string) { h["Authorization"] = basic(e.creds.ClientID, "nope") }, "", 401},
		{"url-encoded basic", func(h map[string]string) {
			h["Authorization"] = basic(url.QueryEscape(e.creds.ClientID), url.QueryEscape(e.creds.ClientSecret))
		}, "", 401},
		{"json content type", func(h map[string]string) { h["Content-Type"] = "application/json" }, "", 415},
		{"no accept", func(h map[string]string) { delete(h, "Accept") }, "", 406},
		{"xml accept", func(h map[string]string) { h["Accept"] = "application/xml" }, "", 406},
		{"no grant", nil, "code=" + code, 400},
		{"bad grant", nil, "grant_type=password&code=" + code, 400},
		{"no code", nil, "grant_type=authorization_code", 400},
		{"unknown code", nil, "grant_type=authorization_code&code=nope", 400},
		{"malformed form", nil, "grant_type=%zz", 400},
	}
	for _, c := range cases {
		h := e.isbankTokenHeaders()
		if c.edit != nil {
			c.edit(h)
		}
		body := c.body
		if body == "" {
			body = "grant_type=authorization_code&code=" + code
		}
		r := e.do("GET", IsbankTokenPath, h, body)
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, r.status, c.status, r.body)
		}
	}
	// None of the rejected requests consumed the code... except "unknown code" which names another.
	wantStatus(t, e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=authorization_code&code="+code), 200)
}

// ---- etranzact ----

var jsonCT = map[string]string{"Content-Type": "application/json"}

func (e *env) etranzactLogin() map[string]any {
	e.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": e.creds.Username, "password": e.creds.Password})
	r := e.do("POST", EtranzactTokenPath, jsonCT, string(b))
	wantStatus(e.t, r, 200)
	return r.json(e.t)
}

func TestEtranzactLoginAndRefresh(t *testing.T) {
	e := newEnv(t)
	m := e.etranzactLogin()
	wantKeys(t, m, "access_token", "expires_in", "refresh_expires_in", "token_type", "id_token", "not-before-policy", "session_state", "scope", "refresh_token")
	if m["token_type"] != "bearer" || m["id_token"] != nil || m["session_state"] != "" || m["scope"] != "" ||
		m["expires_in"] != 60.0 || m["refresh_expires_in"] != 1800.0 {
		t.Fatalf("unexpected response %v", m)
	}
	at, rt := m["access_token"].(string), m["refresh_token"].(string)
	if !strings.HasPrefix(at, "emu-etranzact-") || !e.s.TokenValid(Etranzact, at) {
		t.Fatalf("bad access token %q", at)
	}
	refresh := func(rt string) resp {
		b, _ := json.Marshal(map[string]string{"refresh_token": rt, "grant_type": "refresh_token"})
		return e.do("POST", EtranzactTokenPath, jsonCT, string(b))
	}
	r := refresh(rt)
	wantStatus(t, r, 200)
	m2 := r.json(t)
	if m2["refresh_token"] == rt || m2["access_token"] == at || !e.s.TokenValid(Etranzact, m2["access_token"].(string)) {
		t.Fatalf("refresh did not rotate: %v", m2)
	}
	// The old refresh token is single-use.
	r = refresh(rt)
	wantStatus(t, r, 400)
	wantKeys(t, r.json(t), "error", "error_description")
	// Refresh tokens expire after RefreshTTL.
	e.clock.Advance(31 * time.Minute)
	if r := refresh(m2["refresh_token"].(string)); r.status != 400 || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("expired refresh: %d %s", r.status, r.body)
	}
	if st := e.s.Stats(Etranzact); st != (Stats{Logins: 1, Refreshes: 1, Failed: 2, Total: 4}) {
		t.Fatalf("stats = %+v", st)
	}
}

func TestEtranzactErrors(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", EtranzactTokenPath, jsonCT, `{"username":"`+e.creds.Username+`","password":"wrong"}`)
	wantStatus(t, r, 401)
	if m := r.json(t); !reflect.DeepEqual(m, map[string]any{"error": "invalid_grant", "error_description": "Invalid user credentials"}) {
		t.Fatalf("error = %v", m)
	}
	for _, c := range []struct {
		ct, body string
		status   int
	}{
		{"application/json", `{"username":`, 400},
		{"application/json", `{"username":"x"}`, 400},
		{"application/json", `{"username":1,"password":2}`, 400},
		{"application/json", `{"grant_type":"password","username":"a","password":"b"}`, 400},
		{"application/json", `{"grant_type":"refresh_token"}`, 400},
		{"application/x-www-form-urlencoded", `username=a&password=b`, 415},
		{"", `{}`, 415},
	} {
		h := map[string]string{}
		if c.ct != "" {
			h["Content-Type"] = c.ct
		}
		if r := e.do("POST", EtranzactTokenPath, h, c.body); r.status != c.status {
			t.Errorf("%s %s: status %d, want %d", c.ct, c.body, r.status, c.status)
		}
	}
	r = e.do("GET", EtranzactTokenPath, nil, "")
	wantStatus(t, r, 405)
	wantKeys(t, r.json(t), "error", "error_description")
	// A charset parameter is fine.
	b, _ := json.Marshal(map[string]string{"username": e.creds.Username, "password": e.creds.Password})
	wantStatus(t, e.do("POST", EtranzactTokenPath, map[string]string{"Content-Type": "application/json; charset=utf-8"}, string(b)), 200)
}

// ---- rakbank ----

func (e *env) rakbankHeaders() map[string]string {
	id, _ := uuid.GenerateUUID()
	return map[string]string{"X-IBM-Client-Id": e.creds.ClientID, "X-IBM-Client-Secret": e.creds.ClientSecret,
		"MsgId": id, "Content-Type": "application/json", "Accept": "application/json"}
}

func TestRakbank(t *testing.T) {
	e := newEnv(t)
	body := `{"grant_type":"client_credentials","scope":"accounts transfers","oauth_metadata":{"account_id":"0188000049916"}}`
	h := e.rakbankHeaders()
	r := e.do("POST", RakbankTokenPath, h, body)
	wantStatus(t, r, 200)
	m := r.json(t)
	wantKeys(t, m, "token_type", "access_token", "expires_in", "scope")
	if m["token_type"] != "bearer" || m["scope"] != "accounts transfers" || m["expires_in"] != 60.0 ||
		!strings.HasPrefix(m["access_token"].(string), "emu-rakbank-") || !e.s.TokenValid(Rakbank, m["access_token"].(string)) {
		t.Fatalf("unexpected response %v", m)
	}
	last, _ := e.s.LastRequest(Rakbank)
	var lb struct {
		OauthMetadata map[string]string `json:"oauth_metadata"`
	}
	if json.Unmarshal(last.Body, &lb); lb.OauthMetadata["account_id"] != "0188000049916" || last.Header.Get("MsgId") != h["MsgId"] {
		t.Fatalf("last request %+v", last)
	}
	// Replayed MsgId.
	r = e.do("POST", RakbankTokenPath, h, body)
	wantStatus(t, r, 403)
	wantKeys(t, r.json(t), "status", "response_code", "response_message", "description")

	good := `{"grant_type":"client_credentials","scope":"s"}`
	cases := []struct {
		name   string
		edit   func(map[string]string)
		body   string
		status int
	}{
		{"minimal body", nil, good, 200},
		{"wrong id", func(h map[string]string) { h["X-IBM-Client-Id"] = "nope" }, good, 401},
		{"no secret", func(h map[string]string) { delete(h, "X-IBM-Client-Secret") }, good, 401},
		{"no msgid", func(h map[string]string) { delete(h, "MsgId") }, good, 400},
		{"msgid not uuid", func(h map[string]string) { h["MsgId"] = "not-a-uuid" }, good, 400},
		{"msgid too long", func(h map[string]string) { h["MsgId"] += "-0123456789abcdef" }, good, 400},
		{"no content type", func(h map[string]string) { delete(h, "Content-Type") }, good, 200},
		{"form content type", func(h map[string]string) { h["Content-Type"] = "application/x-www-form-urlencoded" }, good, 415},
		{"extra property", nil, `{"grant_type":"client_credentials","scope":"s","client_id":"x"}`, 400},
		{"wrong grant", nil, `{"grant_type":"password","scope":"s"}`, 400},
		{"no grant", nil, `{"scope":"s"}`, 400},
		{"no scope", nil, `{"grant_type":"client_credentials"}`, 400},
		{"empty scope", nil, `{"grant_type":"client_credentials","scope":""}`, 400},
		{"scope 500", nil, `{"grant_type":"client_credentials","scope":"` + strings.Repeat("a", 500) + `"}`, 200},
		{"scope 501", nil, `{"grant_type":"client_credentials","scope":"` + strings.Repeat("a", 501) + `"}`, 400},
		{"metadata not object", nil, `{"grant_type":"client_credentials","scope":"s","oauth_metadata":"x"}`, 400},
		{"metadata null", nil, `{"grant_type":"client_credentials","scope":"s","oauth_metadata":null}`, 400},
		{"malformed", nil, `{"grant_type":`, 400},
		{"array", nil, `[]`, 400},
		{"empty", nil, ``, 400},
	}
	for _, c := range cases {
		h := e.rakbankHeaders()
		if c.edit != nil {
			c.edit(h)
		}
		r := e.do("POST", RakbankTokenPath, h, c.body)
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, r.status, c.status, r.body)
			continue
		}
		if c.status != 200 {
			m := r.json(t)
			if m["status"] != strconv.Itoa(c.status) || m["response_message"] != http.StatusText(c.status) {
				t.Errorf("%s: status field %v", c.name, m["status"])
			}
		}
	}
	r = e.do("GET", RakbankTokenPath, e.rakbankHeaders(), "")
	wantStatus(t, r, 405)
	if m := r.json(t); m["status"] != "405" || m["response_code"] != "METHOD_NOT_ALLOWED" {
		t.Fatalf("405 body %v", m)
	}
}

// ---- accelerationcloud ----

func (e *env) acPath(q string) string { return AccelerationCloudTokenPath + "?" + q }

func TestAccelerationCloud(t *testing.T) {
	e := newEnv(t)
	e.s.SetTTL(AccelerationCloud, 7200*time.Second)
	h := map[string]string{"Authorization": basic(e.creds.ClientID, e.creds.ClientSecret), "Accept": "application/json"}
	r := e.do("POST", e.acPath("grant_type=client_credentials&user_id=u-42"), h, "")
	wantStatus(t, r, 200)
	m := r.json(t)
	wantKeys(t, m, "access_token", "token_type", "expires_in")
	if m["token_type"] != "bearer" || m["expires_in"] != 7200.0 {
		t.Fatalf("response %v", m)
	}
	at := m["access_token"].(string)
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", at)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Iat, Exp int64
		Jti, Uid string
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now().Unix()
	if claims.Iat != now || claims.Exp != now+7200 || claims.Uid != "u-42" || !strings.HasPrefix(claims.Jti, "emu-accelerationcloud-") {
		t.Fatalf("claims %+v", claims)
	}
	if exp, ok := e.s.TokenExpiry(AccelerationCloud, at); !ok || exp.Unix() != claims.Exp || !e.s.TokenValid(AccelerationCloud, at) {
		t.Fatalf("expiry %v %v", exp, ok)
	}

	fail := map[string]any{"code": 400.0, "errorMessage": "authentication failed", "error": nil, "data": nil}
	for _, c := range []struct {
		name, q, auth string
	}{
		{"wrong secret", "grant_type=client_credentials&user_id=u", basic(e.creds.ClientID, "x")},
		{"no auth", "grant_type=client_credentials&user_id=u", ""},
		{"no user", "grant_type=client_credentials", basic(e.creds.ClientID, e.creds.ClientSecret)},
		{"bad grant", "grant_type=password&user_id=u", basic(e.creds.ClientID, e.creds.ClientSecret)},
	} {
		h := map[string]string{}
		if c.auth != "" {
			h["Authorization"] = c.auth
		}
		r := e.do("POST", e.acPath(c.q), h, "")
		m := r.json(t)
		if r.status != 200 || m["code"] != 400.0 || m["data"] != nil {
			t.Errorf("%s: %d %v", c.name, r.status, m)
		}
		if c.name == "wrong secret" && !reflect.DeepEqual(m, fail) {
			t.Errorf("fail response %v, want %v", m, fail)
		}
	}
	r = e.do("GET", e.acPath("grant_type=client_credentials&user_id=u"), h, "")
	if m := r.json(t); r.status != 200 || m["code"] != 405.0 {
		t.Fatalf("wrong method: %d %v", r.status, m)
	}
	if st := e.s.Stats(AccelerationCloud); st != (Stats{Logins: 1, Failed: 5, Total: 6}) {
		t.Fatalf("stats %+v", st)
	}
}

// ---- knobs ----

func TestFailureInjection(t *testing.T) {
	e := newEnv(t)
	good := `{"grant_type":"client_credentials","scope":"s"}`
	e.s.FailNext(Rakbank, 2, Failure{Status: 503})
	for i := 0; i < 2; i++ {
		r := e.do("POST", RakbankTokenPath, e.rakbankHeaders(), good)
		wantStatus(t, r, 503)
		m := r.json(t)
		if m["status"] != "503" || m["response_code"] != "SERVICE_UNAVAILABLE" || m["response_message"] != "Service Unavailable" {
			t.Fatalf("injected body %v", m)
		}
	}
	wantStatus(t, e.do("POST", RakbankTokenPath, e.rakbankHeaders(), good), 200)

	// Custom body and headers; n < 0 until cleared.
	e.s.FailNext(AccelerationCloud, -1, Failure{Status: 429, Body: "slow down", Header: http.Header{"X-Ratelimit-Retry-After": {"7"}}})
	for i := 0; i < 3; i++ {
		r := e.do("POST", e.acPath("grant_type=client_credentials&user_id=u"), map[string]string{"Authorization": basic(e.creds.ClientID, e.creds.ClientSecret)}, "")
		if r.status != 429 || string(r.body) != "slow down" || r.header.Get("X-RateLimit-Retry-After") != "7" {
			t.Fatalf("injected 429: %d %s %v", r.status, r.body, r.header)
		}
	}
	e.s.ClearFailures()
	wantStatus(t, e.do("POST", e.acPath("grant_type=client_credentials&user_id=u"), map[string]string{"Authorization": basic(e.creds.ClientID, e.creds.ClientSecret)}, ""), 200)

	// Acceleration Cloud's "errors as HTTP 200".
	e.s.FailNext(AccelerationCloud, 1, Failure{Status: 200})
	r := e.do("POST", e.acPath("grant_type=client_credentials&user_id=u"), map[string]string{"Authorization": basic(e.creds.ClientID, e.creds.ClientSecret)}, "")
	if m := r.json(t); r.status != 200 || m["errorMessage"] != "authentication failed" || m["code"] != 400.0 {
		t.Fatalf("200 failure %d %v", r.status, m)
	}

	// isbank: a failure hits whichever step comes next; shapes per status.
	e.s.FailNext(Isbank, 1, Failure{Status: 500})
	r = e.do("GET", IsbankCodePath, e.isbankCodeHeaders(), "")
	wantStatus(t, r, 500)
	if m := r.json(t); m["httpCode"] != "500" {
		t.Fatalf("isbank injected %v", m)
	}
	code := e.isbankCode()
	e.s.FailNext(Isbank, 1, Failure{Status: 401})
	wantStatus(t, e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=authorization_code&code="+code), 401)
	wantStatus(t, e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=authorization_code&code="+code), 200)

	e.s.FailNext(Etranzact, 1, Failure{Status: 503, Delay: 10 * time.Millisecond})
	r = e.do("POST", EtranzactTokenPath, jsonCT, `{}`)
	wantStatus(t, r, 503)
	if m := r.json(t); m["error"] != "temporarily_unavailable" {
		t.Fatalf("etranzact injected %v", m)
	}
	if st := e.s.Stats(Etranzact); st.Failed != 1 || st.Total != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTTLAndValidity(t *testing.T) {
	e := newEnv(t)
	e.s.SetTTL(Etranzact, 5*time.Second)
	m := e.etranzactLogin()
	if m["expires_in"] != 5.0 {
		t.Fatalf("expires_in %v", m["expires_in"])
	}
	at := m["access_token"].(string)
	exp, ok := e.s.TokenExpiry(Etranzact, at)
	if !ok || !exp.Equal(e.clock.Now().Add(5*time.Second)) || !e.s.TokenValid(Etranzact, at) {
		t.Fatalf("expiry %v %v", exp, ok)
	}
	e.clock.Advance(5 * time.Second)
	if e.s.TokenValid(Etranzact, at) {
		t.Fatal("token valid after expiry")
	}
	if e.s.TokenValid(Etranzact, "emu-etranzact-forged") {
		t.Fatal("forged token valid")
	}
	if _, ok := e.s.TokenExpiry(Etranzact, "nope"); ok {
		t.Fatal("unknown token has expiry")
	}
	e.s.SetTTL(Etranzact, 0) // back to the default
	if m := e.etranzactLogin(); m["expires_in"] != 60.0 {
		t.Fatalf("default ttl %v", m["expires_in"])
	}
	// Options.TokenTTL sets the default for all.
	s := New(Options{TokenTTL: 90 * time.Second, RefreshTTL: time.Hour})
	ts := httptest.NewServer(s)
	defer ts.Close()
	e2 := &env{t: t, s: s, url: ts.URL, creds: DefaultCredentials()}
	if m := e2.etranzactLogin(); m["expires_in"] != 90.0 || m["refresh_expires_in"] != 3600.0 {
		t.Fatalf("options ttl %v", m)
	}
}

func TestLatency(t *testing.T) {
	e := newEnv(t)
	e.s.SetLatency(Etranzact, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url+EtranzactTokenPath, strings.NewReader(`{}`))
	start := time.Now()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	e.s.SetLatency(Etranzact, 50*time.Millisecond)
	m := e.etranzactLogin()
	if time.Since(start) < 50*time.Millisecond || m["access_token"] == nil {
		t.Fatal("latency not applied")
	}
	e.s.Reset()
	if st := e.s.Stats(Etranzact); st != (Stats{}) {
		t.Fatalf("stats after reset %+v", st)
	}
	if _, ok := e.s.LastRequest(Etranzact); ok {
		t.Fatal("last request survives reset")
	}
	if e.s.TokenValid(Etranzact, m["access_token"].(string)) {
		t.Fatal("token survives reset")
	}
}

func TestCustomCredentialsAndNotFound(t *testing.T) {
	s := New(Options{Credentials: Credentials{Username: "alice", Password: "s3cret"}})
	ts := httptest.NewServer(s)
	defer ts.Close()
	e := &env{t: t, s: s, url: ts.URL, creds: DefaultCredentials()}
	e.creds.Username, e.creds.Password = "alice", "s3cret"
	e.etranzactLogin()
	wantStatus(t, e.do("GET", IsbankCodePath, e.isbankCodeHeaders(), ""), 200) // other fields defaulted
	wantStatus(t, e.do("POST", "/auth/token/", jsonCT, "{}"), 404)
	wantStatus(t, e.do("GET", "/", nil, ""), 404)
	if s.Stats("nope") != (Stats{}) || ProviderForPath(RakbankTokenPath) != Rakbank || ProviderForPath("/x") != "" {
		t.Fatal("unknown provider handling")
	}
}

func TestAdmin(t *testing.T) {
	e := newEnv(t)
	e.etranzactLogin()
	wantStatus(t, e.do("POST", "/_emulator/fail", nil, `{"provider":"rakbank","count":1,"status":503,"headers":{"Retry-After":"3"}}`), 200)
	r := e.do("POST", RakbankTokenPath, e.rakbankHeaders(), `{"grant_type":"client_credentials","scope":"s"}`)
	if r.status != 503 || r.header.Get("Retry-After") != "3" {
		t.Fatalf("admin fail: %d %v", r.status, r.header)
	}
	wantStatus(t, e.do("POST", "/_emulator/ttl", nil, `{"provider":"etranzact","seconds":12}`), 200)
	if m := e.etranzactLogin(); m["expires_in"] != 12.0 {
		t.Fatalf("admin ttl %v", m)
	}
	r = e.do("GET", "/_emulator/stats", nil, "")
	wantStatus(t, r, 200)
	var stats map[string]map[string]int
	if err := json.Unmarshal(r.body, &stats); err != nil {
		t.Fatal(err)
	}
	if len(stats) != 4 || !reflect.DeepEqual(stats[Etranzact], map[string]int{"codes": 0, "logins": 2, "refreshes": 0, "failed": 0, "total": 2}) ||
		stats[Rakbank]["failed"] != 1 {
		t.Fatalf("stats %v", stats)
	}
	wantStatus(t, e.do("POST", "/_emulator/fail", nil, `{"provider":"etranzact","count":-1,"status":500,"body":"boom"}`), 200)
	wantStatus(t, e.do("POST", EtranzactTokenPath, jsonCT, `{}`), 500)
	wantStatus(t, e.do("POST", "/_emulator/clear", nil, ""), 200)
	e.etranzactLogin()
	wantStatus(t, e.do("POST", "/_emulator/latency", nil, `{"provider":"isbank","ms":1}`), 200)
	wantStatus(t, e.do("POST", "/_emulator/reset", nil, ""), 200)
	if st := e.s.Stats(Etranzact); st != (Stats{}) {
		t.Fatalf("reset: %+v", st)
	}
	wantStatus(t, e.do("POST", "/_emulator/fail", nil, `{"provider":"nobank"}`), 400)
	wantStatus(t, e.do("POST", "/_emulator/ttl", nil, `{`), 400)
	wantStatus(t, e.do("POST", "/_emulator/stats", nil, ""), 405)
	wantStatus(t, e.do("GET", "/_emulator/reset", nil, ""), 405)
	wantStatus(t, e.do("GET", "/_emulator/nothing", nil, ""), 404)
}

func TestSelfSignedTLS(t *testing.T) {
	cfg, certPEM, err := SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(New(Options{}))
	ts.TLS = cfg
	ts.StartTLS()
	defer ts.Close()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("bad PEM")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, host := range []string{ts.URL, strings.Replace(ts.URL, "127.0.0.1", "localhost", 1)} {
		res, err := client.Get(host + "/_emulator/stats")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", host, res.StatusCode)
		}
	}
	// An untrusting client fails.
	if _, err := http.Get(ts.URL + "/_emulator/stats"); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}

func TestConcurrent(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				e.etranzactLogin()
				e.s.Stats(Etranzact)
				e.s.LastRequest(Etranzact)
			}
		}()
	}
	wg.Wait()
	if st := e.s.Stats(Etranzact); st.Logins != 160 || st.Total != 160 {
		t.Fatalf("stats %+v", st)
	}
}
