package emulator

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHugeBodyIsPaddedAndStreamed(t *testing.T) {
	e := newEnv(t)
	const size = 10 << 20
	e.s.FailNext(Etranzact, 1, Failure{Status: 200, Body: `<html>`, BodyBytes: size})
	r := e.do("POST", EtranzactTokenPath, jsonCT, `{}`)
	wantStatus(t, r, 200)
	if len(r.body) != size || !strings.HasPrefix(string(r.body), "<html>") || strings.TrimSpace(string(r.body)) != "<html>" {
		t.Fatalf("body of %d bytes starting %q, want %d bytes of <html> and padding", len(r.body), r.body[:min(len(r.body), 10)], size)
	}
	if st := e.s.Stats(Etranzact); st.Failed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDribbledBodyArrivesSlowly(t *testing.T) {
	e := newEnv(t)
	body := `{"access_token":"x","expires_in":60}`
	e.s.FailNext(Rakbank, 1, Failure{Status: 200, Body: body, Dribble: 20 * time.Millisecond})
	req, _ := http.NewRequest("POST", e.url+RakbankTokenPath, strings.NewReader(`{}`))
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	headersAfter := time.Since(start)
	got, _ := io.ReadAll(res.Body)
	total := time.Since(start)
	if string(got) != body {
		t.Fatalf("body %q", got)
	}
	// Headers at once, the body over about len(body) x 20ms.
	if headersAfter > 300*time.Millisecond || total < time.Duration(len(body)-1)*20*time.Millisecond {
		t.Fatalf("headers after %s, body after %s; want headers at once and a slow body", headersAfter, total)
	}
}

func TestAdminSlowAndHugeKnobs(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.do("POST", "/_emulator/fail", nil, `{"provider":"etranzact","status":200,"body":"{","body_bytes":2000000}`), 200)
	if r := e.do("POST", EtranzactTokenPath, jsonCT, `{}`); len(r.body) != 2000000 {
		t.Fatalf("admin body_bytes: %d bytes", len(r.body))
	}
	wantStatus(t, e.do("POST", "/_emulator/fail", nil, `{"provider":"etranzact","status":200,"body":"abcde","dribble_ms":50}`), 200)
	start := time.Now()
	if r := e.do("POST", EtranzactTokenPath, jsonCT, `{}`); string(r.body) != "abcde" || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("admin dribble_ms: %q after %s", r.body, time.Since(start))
	}
	wantStatus(t, e.do("POST", "/_emulator/fail", nil, `{"provider":"isbank","status":502,"path":"`+IsbankTokenPath+`","consume":true}`), 200)
	code := e.isbankCode()
	wantStatus(t, e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), "grant_type=authorization_code&code="+code), 502)
	if st := e.s.Stats(Isbank); st.Logins != 1 || st.Failed != 1 {
		t.Fatalf("admin path/consume: %+v", st)
	}
}

func TestFailureOnOnePathAfterConsuming(t *testing.T) {
	e := newEnv(t)
	e.s.FailNext(Isbank, 1, Failure{Status: 502, Path: IsbankTokenPath, Consume: true})
	code := e.isbankCode() // the code step passes: the failure waits for the token path
	form := "grant_type=authorization_code&code=" + code
	wantStatus(t, e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), form), 502)
	// The code was used up by the failed request.
	r := e.do("GET", IsbankTokenPath, e.isbankTokenHeaders(), form)
	wantStatus(t, r, 400)
	if m := r.json(t); m["error"] != "invalid_grant" {
		t.Fatalf("reused code: %v", m)
	}
	if st := e.s.Stats(Isbank); st.Codes != 1 || st.Logins != 1 || st.Failed != 2 || st.Total != 3 {
		t.Fatalf("stats %+v", st)
	}
}
