package fapi_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
)

// noSecrets fails when text holds any of the secrets.
func noSecrets(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) >= 6 && (strings.Contains(text, s) || strings.Contains(text, url.QueryEscape(s))) {
			t.Errorf("%s shows a secret (%.8s...): %s", what, s, text)
		}
	}
}

// A server that echoes everything it was sent into error_description:
// codes, verifiers, states, nonces, assertions, DPoP proofs and refresh
// tokens are cut out of every error, while the rest of its text stays.
func TestSecretsNeverInErrors(t *testing.T) {
	w := newWorld(t)
	a, tok := w.authorized(t)
	a2 := w.begin(t, nil)
	p, _ := fapi.ParseCallbackURL(approve(t, a2.AuthorizationURL))

	w.as.mu.Lock()
	w.as.Hostile = true
	w.as.mu.Unlock()
	_, errPAR := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: redirectURI, Scope: "openid accounts"})
	_, errCode := w.client.Exchange(t.Context(), a2, p.Code)
	_, errRefresh := w.client.Refresh(t.Context(), tok.RefreshToken, "")
	errRevoke := w.client.Revoke(t.Context(), tok.RefreshToken)

	secrets := append(w.as.Received(), a.State, a.Nonce, a.Verifier, a2.State, a2.Nonce, a2.Verifier, p.Code,
		tok.AccessToken, tok.RefreshToken, tok.IDToken)
	if len(w.as.Received()) < 12 {
		t.Fatalf("the AS saw only %d secrets", len(w.as.Received()))
	}
	for name, err := range map[string]error{"par": errPAR, "token": errCode, "refresh": errRefresh, "revoke": errRevoke} {
		if err == nil {
			t.Fatalf("%s: no error from a hostile AS", name)
		}
		text := fmt.Sprintf("%v | %+v | %#v", err, err, err)
		noSecrets(t, name+" error", text, secrets)
		if !strings.Contains(err.Error(), "error=invalid_request: you sent:") || !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("%s: the server's text is gone: %v", name, err)
		}
	}

	// The user agent is no more trusted: a denial (with a code beside it)
	// echoing the secrets.
	denial := fapi.CallbackParams{State: a2.State, Code: p.Code, Iss: w.meta.Issuer, Error: "access_denied",
		ErrorDescription: "state " + a2.State + " code " + p.Code + " verifier " + a2.Verifier}
	_, err := a2.CheckCallback(denial, w.meta.Issuer, true, t0)
	noSecrets(t, "denial", err.Error(), secrets)
	// An error code that smuggles a secret is replaced whole.
	denial.Error = "x" + a2.State
	_, err = a2.CheckCallback(denial, w.meta.Issuer, true, t0)
	noSecrets(t, "denial code", err.Error(), secrets)
	// Failed checks name the check, not the values.
	for _, bad := range []fapi.CallbackParams{
		{State: p.Code, Code: p.Code, Iss: w.meta.Issuer},
		{State: a2.State, Code: p.Code, Iss: "https://evil.example/" + a2.Nonce},
	} {
		_, err := a2.CheckCallback(bad, w.meta.Issuer, true, t0)
		noSecrets(t, "callback check", err.Error(), secrets)
	}

	// Printing an attempt or a token shows no secret either.
	noSecrets(t, "attempt", fmt.Sprintf("%v %+v %#v %s", *a, *a, a, a), secrets)
	noSecrets(t, "token", fmt.Sprintf("%v %+v %#v %s", *tok, *tok, tok, tok), secrets)
}

// A transport failure names the endpoint, never the request.
func TestTransportErrorHasNoSecrets(t *testing.T) {
	w := newWorld(t)
	_, tok := w.authorized(t)
	w.as.srv.Close()
	_, err := w.client.Refresh(t.Context(), tok.RefreshToken, "")
	var e *fapi.Error
	if !asError(err, &e) || e.Step != fapi.StepRefresh || e.Status != 0 || !strings.Contains(err.Error(), "request failed") {
		t.Fatalf("refresh against a closed server: %v", err)
	}
	noSecrets(t, "transport error", err.Error(), append(w.as.Received(), tok.RefreshToken))
}
