package fapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
)

// begin pushes a request for "openid accounts offline_access" and returns
// the attempt.
func (w *world) begin(t *testing.T, params map[string]string) *fapi.Attempt {
	t.Helper()
	a, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: redirectURI, Scope: "openid accounts offline_access",
		AuthorizationDetails: json.RawMessage(`[ {"type": "account_information", "actions": ["read"]} ]`), Params: params})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return a
}

// authorized runs an attempt through the user's approval and the code
// exchange.
func (w *world) authorized(t *testing.T) (*fapi.Attempt, *fapi.Token) {
	t.Helper()
	a := w.begin(t, nil)
	p, err := fapi.ParseCallbackURL(approve(t, a.AuthorizationURL))
	if err != nil {
		t.Fatal(err)
	}
	code, err := a.CheckCallback(p, w.meta.Issuer, fapi.RequireIss(w.meta, true), w.clock.Now())
	if err != nil {
		t.Fatalf("CheckCallback: %v", err)
	}
	tok, err := w.client.Exchange(t.Context(), a, code)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return a, tok
}

func TestFullFlow(t *testing.T) {
	w := newWorld(t)
	a, tok := w.authorized(t)
	if tok.TokenType != fapi.TokenTypeDPoP || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token %v", tok)
	}
	if !tok.ExpiresAt.Equal(t0.Add(300*time.Second)) || !tok.RefreshTokenExpiresAt.Equal(t0.Add(90*24*time.Hour)) {
		t.Errorf("expiry %v, refresh expiry %v", tok.ExpiresAt, tok.RefreshTokenExpiresAt)
	}
	if tok.Scope != "openid accounts offline_access" || string(tok.AuthorizationDetails) != `[{"type":"account_information","actions":["read"]}]` {
		t.Errorf("scope %q, authorization_details %s", tok.Scope, tok.AuthorizationDetails)
	}
	keys := &fapi.JWKS{HTTP: noRedirects(), URL: w.meta.JWKSURI}
	claims, err := fapi.ValidateIDToken(t.Context(), tok.IDToken, keys, fapi.IDTokenCheck{Issuer: w.meta.Issuer,
		ClientID: clientID, Nonce: a.Nonce, Now: w.clock.Now()})
	if err != nil {
		t.Fatalf("ValidateIDToken: %v", err)
	}
	if claims.Subject != "alice" || !claims.AuthTime.Equal(t0) {
		t.Errorf("claims %+v", claims)
	}

	// Refresh rotates; the old refresh token is then refused, and its
	// reuse costs the whole grant.
	w.clock.Add(4 * time.Minute)
	tok2, err := w.client.Refresh(t.Context(), tok.RefreshToken, "")
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if !tok2.ExpiresAt.Equal(t0.Add(9 * time.Minute)) {
		t.Errorf("refreshed token expires %v", tok2.ExpiresAt)
	}
	tok3, err := w.client.Refresh(t.Context(), tok2.RefreshToken, "accounts")
	if err != nil {
		t.Fatalf("second Refresh: %v", err)
	}
	if err := w.client.Revoke(t.Context(), tok3.RefreshToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	_, err = w.client.Refresh(t.Context(), tok3.RefreshToken, "")
	if !fapi.IsInvalidGrant(err) {
		t.Fatalf("refresh after revocation: %v, want invalid_grant", err)
	}
	if w.as.Hits("/revoke") != 1 {
		t.Errorf("revocation requests %d", w.as.Hits("/revoke"))
	}
}

func TestRefreshReuseIsInvalidGrant(t *testing.T) {
	w := newWorld(t)
	_, tok := w.authorized(t)
	tok2, err := w.client.Refresh(t.Context(), tok.RefreshToken, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.client.Refresh(t.Context(), tok.RefreshToken, "")
	var e *fapi.Error
	if !fapi.IsInvalidGrant(err) || !asError(err, &e) || e.Step != fapi.StepRefresh || e.Status != 400 {
		t.Fatalf("reused refresh token: %v", err)
	}
	// The AS revoked the grant on reuse: the rotated token is dead too.
	if _, err := w.client.Refresh(t.Context(), tok2.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
		t.Fatalf("refresh after reuse detection: %v", err)
	}
}

func TestCodeReplayIsInvalidGrant(t *testing.T) {
	w := newWorld(t)
	a := w.begin(t, nil)
	p, _ := fapi.ParseCallbackURL(approve(t, a.AuthorizationURL))
	if _, err := w.client.Exchange(t.Context(), a, p.Code); err != nil {
		t.Fatal(err)
	}
	_, err := w.client.Exchange(t.Context(), a, p.Code)
	if !fapi.IsInvalidGrant(err) {
		t.Fatalf("code replay: %v", err)
	}
	if got := err.Error(); got != "token: refused (HTTP 400): error=invalid_grant: unknown or used code" {
		t.Errorf("error %q", got)
	}
}

func TestExchangeWrongVerifierIsInvalidGrant(t *testing.T) {
	w := newWorld(t)
	a := w.begin(t, nil)
	p, _ := fapi.ParseCallbackURL(approve(t, a.AuthorizationURL))
	other := *a
	pk, _ := fapi.NewPKCE()
	other.Verifier = pk.Verifier
	if _, err := w.client.Exchange(t.Context(), &other, p.Code); !fapi.IsInvalidGrant(err) {
		t.Fatalf("wrong verifier: %v", err)
	}
}

func TestTokenMustBeDPoPBound(t *testing.T) {
	w := newWorld(t)
	w.as.TokenType = "Bearer"
	a := w.begin(t, nil)
	p, _ := fapi.ParseCallbackURL(approve(t, a.AuthorizationURL))
	_, err := w.client.Exchange(t.Context(), a, p.Code)
	var e *fapi.Error
	if !asError(err, &e) || e.Step != fapi.StepToken || e.Status != 200 {
		t.Fatalf("a Bearer answer to a DPoP request: %v", err)
	}
}

func TestTokenDPoPNonceRetry(t *testing.T) {
	w := newWorld(t)
	a := w.begin(t, nil)
	p, _ := fapi.ParseCallbackURL(approve(t, a.AuthorizationURL))
	w.as.mu.Lock()
	w.as.RequireNonce = true
	w.as.mu.Unlock()
	if _, err := w.client.Exchange(t.Context(), a, p.Code); err != nil {
		t.Fatalf("Exchange with a nonce challenge: %v", err)
	}
	if n := w.as.Hits("/token"); n != 2 {
		t.Errorf("token requests %d, want 2 (challenge, retry)", n)
	}
	if w.client.DPoPNonce() != "server-nonce-1" {
		t.Errorf("nonce kept %q", w.client.DPoPNonce())
	}
}

// A server that keeps answering use_dpop_nonce gets exactly one retry,
// and its answer is the error.
func TestDPoPNonceRetriedOnlyOnce(t *testing.T) {
	w := newWorld(t)
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n++
		rw.Header().Set("DPoP-Nonce", fmt.Sprintf("nonce-%d", n))
		oauthError(rw, 400, "use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
	}))
	defer srv.Close()
	meta := *w.meta
	meta.PushedAuthorizationRequestEndpoint = srv.URL + "/par"
	w.client.Metadata = &meta
	_, err := w.client.Push(t.Context(), fapi.PushRequest{RedirectURI: redirectURI, Scope: "accounts", State: "state-value-123",
		CodeChallenge: fapi.S256Challenge("v")})
	if !fapi.HasCode(err, "use_dpop_nonce") || n != 2 {
		t.Fatalf("after %d requests: %v", n, err)
	}
	if w.client.DPoPNonce() != "nonce-2" {
		t.Errorf("nonce kept %q", w.client.DPoPNonce())
	}
}

func asError[T error](err error, target *T) bool {
	for err != nil {
		if e, ok := err.(T); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}
