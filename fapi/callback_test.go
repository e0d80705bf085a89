package fapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
)

func TestCallbackChecks(t *testing.T) {
	w := newWorld(t)
	a := w.begin(t, nil)
	good, err := fapi.ParseCallbackURL(approve(t, a.AuthorizationURL))
	if err != nil {
		t.Fatal(err)
	}
	iss := w.meta.Issuer
	check := func(p fapi.CallbackParams, requireIss bool, now time.Time) error {
		_, err := a.CheckCallback(p, iss, requireIss, now)
		return err
	}
	wrongState := good
	wrongState.State = a.State[:len(a.State)-1] + "x"
	wrongIss := good
	wrongIss.Iss = "https://evil.example"
	noIss := good
	noIss.Iss = ""
	for _, c := range []struct {
		name       string
		p          fapi.CallbackParams
		requireIss bool
		now        time.Time
		check      string
	}{
		{"wrong state", wrongState, true, t0, fapi.CheckState},
		{"no state", fapi.CallbackParams{Code: good.Code, Iss: iss}, true, t0, fapi.CheckState},
		{"wrong iss", wrongIss, true, t0, fapi.CheckIss},
		{"wrong iss, not required", wrongIss, false, t0, fapi.CheckIss},
		{"missing iss", noIss, true, t0, fapi.CheckIss},
		{"expired", good, true, a.ExpiresAt, fapi.CheckExpired},
		{"no code", fapi.CallbackParams{State: a.State, Iss: iss}, true, t0, fapi.CheckCode},
	} {
		var ce *fapi.CallbackError
		if err := check(c.p, c.requireIss, c.now); !asError(err, &ce) || ce.Check != c.check {
			t.Errorf("%s: %v, want check %s", c.name, err, c.check)
		}
	}
	if err := check(noIss, false, t0); err != nil {
		t.Errorf("missing iss where the AS does not send it: %v", err)
	}
	code, err := a.CheckCallback(good, iss, true, a.ExpiresAt.Add(-time.Second))
	if err != nil || code != good.Code {
		t.Errorf("good callback: %v", err)
	}
}

func TestCallbackAccessDenied(t *testing.T) {
	w := newWorld(t)
	a := w.begin(t, map[string]string{"deny": "1"})
	cb := approve(t, a.AuthorizationURL)
	p, err := fapi.ParseCallbackURL(cb)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.CheckCallback(p, w.meta.Issuer, true, t0)
	var d *fapi.Denial
	if !asError(err, &d) || d.Code != "access_denied" || d.Description != "The user said no" {
		t.Fatalf("denial: %v", err)
	}
	// A denial still has to be for this attempt.
	p.State = "someone-elses-state"
	var ce *fapi.CallbackError
	if _, err := a.CheckCallback(p, w.meta.Issuer, true, t0); !asError(err, &ce) || ce.Check != fapi.CheckState {
		t.Errorf("denial with another state: %v", err)
	}
}

func TestParseCallbackURL(t *testing.T) {
	p, err := fapi.ParseCallbackURL("https://app.example/cb?code=c0de-value&state=st&iss=https%3A%2F%2Fas.bank.example")
	if err != nil || p.Code != "c0de-value" || p.State != "st" || p.Iss != "https://as.bank.example" {
		t.Fatalf("%+v %v", p, err)
	}
	for _, c := range []struct{ url, want string }{
		{"https://app.example/cb?code=a&code=b&state=s", "code appears more than once"},
		{"https://app.example/cb?code=a&state=s&state=t", "state appears more than once"},
		{"https://app.example/cb?response=eyJ.x.y", "JARM"},
		{"https://app.example/cb#code=a&state=s", "neither code nor error"},
		{"https://app.example/cb?code=%zz", "cannot be parsed"},
	} {
		_, err := fapi.ParseCallbackURL(c.url)
		var ce *fapi.CallbackError
		if !asError(err, &ce) || ce.Check != fapi.CheckMalformed || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.url, err, c.want)
		}
	}
}
