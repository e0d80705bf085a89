package fapi_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
)

func TestDiscoverReadsRFC8414(t *testing.T) {
	w := newWorld(t)
	m := w.meta
	if m.Issuer != w.as.issuer || m.PushedAuthorizationRequestEndpoint != w.as.issuer+"/par" ||
		m.TokenEndpoint != w.as.issuer+"/token" || m.RevocationEndpoint != w.as.issuer+"/revoke" ||
		m.JWKSURI != w.as.issuer+"/jwks" || m.AuthorizationEndpoint != w.as.issuer+"/authorize" {
		t.Errorf("endpoints %+v", m)
	}
	if !m.RequirePushedAuthorizationRequests || !m.AuthorizationResponseIssParameterSupported ||
		!slices.Equal(m.DPoPSigningAlgValuesSupported, []string{"ES256", "PS256"}) ||
		!slices.Equal(m.CodeChallengeMethodsSupported, []string{"S256"}) ||
		!slices.Equal(m.TokenEndpointAuthMethodsSupported, []string{"private_key_jwt", "tls_client_auth"}) ||
		!slices.Equal(m.TokenEndpointAuthSigningAlgValuesSupported, []string{"ES256", "PS256"}) {
		t.Errorf("capabilities %+v", m)
	}
	if !m.FetchedAt.Equal(t0) || m.Source != w.as.issuer+fapi.WellKnownOAuth {
		t.Errorf("fetched %v from %s", m.FetchedAt, m.Source)
	}
}

func TestDiscoverIssuerMismatch(t *testing.T) {
	w := newWorld(t)
	w.as.Meta["issuer"] = w.as.issuer + "/"
	_, err := fapi.Discover(t.Context(), noRedirects(), w.as.issuer, t0)
	var e *fapi.Error
	if !asError(err, &e) || e.Step != fapi.StepDiscovery || !strings.Contains(err.Error(), "is not the configured") {
		t.Fatalf("issuer with a trailing slash: %v", err)
	}
	// The issuer a document names must be the configured one, even when
	// that document is the only one there.
	_, err = fapi.Discover(t.Context(), noRedirects(), w.as.issuer+"/other", t0)
	if err == nil {
		t.Fatal("a document of another issuer was accepted")
	}
}

func TestWellKnownURLs(t *testing.T) {
	for _, c := range []struct{ issuer, oauth, oidc string }{
		{"https://as.bank.example", "https://as.bank.example/.well-known/oauth-authorization-server",
			"https://as.bank.example/.well-known/openid-configuration"},
		{"https://as.bank.example/", "https://as.bank.example/.well-known/oauth-authorization-server",
			"https://as.bank.example/.well-known/openid-configuration"},
		{"https://bank.example:8443/auth/realms/ob", "https://bank.example:8443/.well-known/oauth-authorization-server/auth/realms/ob",
			"https://bank.example:8443/auth/realms/ob/.well-known/openid-configuration"},
		{"https://bank.example/tenant/", "https://bank.example/.well-known/oauth-authorization-server/tenant",
			"https://bank.example/tenant/.well-known/openid-configuration"},
	} {
		got, err := fapi.WellKnownURLs(c.issuer)
		if err != nil || got[0] != c.oauth || got[1] != c.oidc {
			t.Errorf("%s: %v %v", c.issuer, got, err)
		}
	}
	for _, bad := range []string{"http://as.bank.example", "https://as.bank.example?x=1", "https://as.bank.example#f",
		"https://u@as.bank.example", "as.bank.example", ""} {
		if _, err := fapi.WellKnownURLs(bad); err == nil {
			t.Errorf("issuer %q accepted", bad)
		}
	}
}

// An issuer with a path: RFC 8414's URL puts the well-known segment before
// the path; a server that serves only OpenID Connect's is found second.
func TestDiscoverIssuerWithPath(t *testing.T) {
	var issuer string
	var asked []string
	oidcOnly := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		doc := map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token"}
		switch {
		case r.URL.Path == "/.well-known/oauth-authorization-server/realms/ob" && !oidcOnly:
		case r.URL.Path == "/realms/ob/.well-known/openid-configuration":
		default:
			http.NotFound(w, r)
			return
		}
		writeJSON(w, 200, doc)
	}))
	defer srv.Close()
	issuer = srv.URL + "/realms/ob"
	m, err := fapi.Discover(t.Context(), noRedirects(), issuer, t0)
	if err != nil || m.Source != srv.URL+"/.well-known/oauth-authorization-server/realms/ob" {
		t.Fatalf("RFC 8414: %v %+v", err, m)
	}
	oidcOnly, asked = true, nil
	m, err = fapi.Discover(t.Context(), noRedirects(), issuer, t0)
	if err != nil || m.Source != issuer+fapi.WellKnownOIDC {
		t.Fatalf("OpenID Connect: %v %+v", err, m)
	}
	if !slices.Equal(asked, []string{"/.well-known/oauth-authorization-server/realms/ob", "/realms/ob/.well-known/openid-configuration"}) {
		t.Errorf("asked %v", asked)
	}
}

func TestDiscoverFailures(t *testing.T) {
	var body string
	status := 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	iss := srv.URL
	for _, c := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"not found", "", 404, "no metadata: " + iss + fapi.WellKnownOAuth + " answered HTTP 404; " + iss + fapi.WellKnownOIDC + " answered HTTP 404"},
		{"too large", `{"issuer":"` + strings.Repeat("x", fapi.MaxBodySize) + `"}`, 200, "answer is larger than"},
		{"not JSON", "<html>", 200, "not valid metadata JSON"},
		{"no token endpoint", `{"issuer":"` + iss + `","authorization_endpoint":"` + iss + `/a"}`, 200, "token_endpoint is missing"},
		{"endpoint elsewhere over http", `{"issuer":"` + iss + `","authorization_endpoint":"` + iss + `/a","token_endpoint":"http://bank.example/token"}`, 200, "token_endpoint must use https"},
		{"endpoint with fragment", `{"issuer":"` + iss + `","authorization_endpoint":"` + iss + `/a#x","token_endpoint":"` + iss + `/t"}`, 200, "authorization_endpoint must not have a fragment"},
	} {
		body, status = c.body, c.status
		_, err := fapi.Discover(t.Context(), noRedirects(), iss, t0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := fapi.Discover(t.Context(), nil, iss, t0); err == nil || !strings.Contains(err.Error(), "no HTTP client") {
		t.Errorf("nil client: %v", err)
	}
}

func TestMovedEndpoints(t *testing.T) {
	old := &fapi.Metadata{Issuer: "https://as.bank.example", AuthorizationEndpoint: "https://as.bank.example/authorize",
		PushedAuthorizationRequestEndpoint: "https://as.bank.example/par", TokenEndpoint: "https://as.bank.example/token",
		JWKSURI: "https://keys.bank.example/jwks"}
	same := *old
	same.TokenEndpoint = "https://AS.bank.example:443/v2/token" // same host, new path
	if m := fapi.MovedEndpoints(old, &same); len(m) != 0 {
		t.Errorf("same hosts reported: %v", m)
	}
	moved := same
	moved.TokenEndpoint = "https://evil.example/token"
	moved.RevocationEndpoint = "https://as.bank.example/revoke" // newly added
	moved.PushedAuthorizationRequestEndpoint = ""               // gone
	got := fapi.MovedEndpoints(old, &moved)
	want := []string{
		"pushed_authorization_request_endpoint moved from as.bank.example:443 to (none)",
		"token_endpoint moved from as.bank.example:443 to evil.example:443",
		"revocation_endpoint moved from (none) to as.bank.example:443",
	}
	if len(got) != len(want) {
		t.Fatalf("moves %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("move %d: %q, want %q", i, got[i], want[i])
		}
	}
}
