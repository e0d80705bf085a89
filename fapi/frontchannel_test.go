package fapi_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// A server that offers no PAR endpoint gets the request in the URL: every
// parameter a push carries plus client_id, the endpoint's own query kept,
// no request_uri, no client authentication and no request to the server.
func TestBeginWithoutPARPutsTheRequestInTheURL(t *testing.T) {
	w := newWorld(t)
	meta := *w.meta
	meta.PushedAuthorizationRequestEndpoint = ""
	meta.AuthorizationEndpoint = w.as.issuer + "/authorize?realm=retail"
	w.client.Metadata = &meta
	a, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: redirectURI, Scope: "openid accounts offline_access",
		AuthorizationDetails: json.RawMessage(`[{"type":"account_information"}]`), Params: map[string]string{"ui_locales": "en"}})
	if err != nil {
		t.Fatal(err)
	}
	if w.as.LastPAR() != nil {
		t.Fatal("a server without PAR was sent a push")
	}
	u, err := url.Parse(a.AuthorizationURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	jkt, _ := keyring.Thumbprint(mustPublic(t, w.dpopKey))
	for name, want := range map[string]string{
		"realm": "retail", "response_type": "code", "client_id": clientID, "redirect_uri": redirectURI,
		"scope": "openid accounts offline_access", "state": a.State, "nonce": a.Nonce,
		"code_challenge": fapi.S256Challenge(a.Verifier), "code_challenge_method": "S256", "dpop_jkt": jkt,
		"prompt": "consent", "ui_locales": "en", "authorization_details": `[{"type":"account_information"}]`,
		"request_uri": "", "client_assertion": "", "client_assertion_type": "",
	} {
		if got := q.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !a.RequestURIExpiresAt.Equal(a.ExpiresAt) {
		t.Errorf("request expiry %v, want the attempt's %v", a.RequestURIExpiresAt, a.ExpiresAt)
	}
}
