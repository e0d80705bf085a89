package emulator

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// The tests below run package fapi's client, the one the plugin uses,
// against the authorization server end to end.

// fapiWorld is an emulator, a stand-in for Vault's unauthenticated
// bankauth/jwks/<key> serving the client key's JWK Set, and a fapi.Client.
type fapiWorld struct {
	e      *fapiEnv
	meta   *fapi.Metadata
	client *fapi.Client
}

func noRedirects() *http.Client {
	return &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func newFAPIWorld(t *testing.T, sigType string) *fapiWorld {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	sig, err := keyring.Generate(sigType, nil, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	dpop, err := keyring.Generate(keyring.TypeECP256, nil, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	vault := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set, err := sig.JWKS()
		if err != nil || r.URL.Path != "/v1/bankauth/jwks/obsig" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(vault.Close)
	s := New(Options{Now: clock.Now, TokenTTL: 5 * time.Minute,
		FAPI: FAPIOptions{Client: FAPIClient{JWKSURI: vault.URL + "/v1/bankauth/jwks/obsig"}}})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	e := &fapiEnv{t: t, s: s, base: ts.URL, issuer: ts.URL + FAPIPrefix, clock: clock}
	meta, err := fapi.Discover(t.Context(), noRedirects(), e.issuer, clock.Now())
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if meta.Source != ts.URL+FAPIOAuthMetadataPath {
		t.Errorf("metadata from %s, want RFC 8414's", meta.Source)
	}
	if err := fapi.CheckFAPI2(meta, fapi.ClientConfig{AuthMethod: fapi.AuthPrivateKeyJWT, SigningAlg: keyring.DefaultAlg(sigType), DPoPAlg: "ES256"}); err != nil {
		t.Fatalf("CheckFAPI2: %v", err)
	}
	client := &fapi.Client{HTTP: noRedirects(), Metadata: meta, ClientID: DefaultFAPIClientID,
		Auth: fapi.PrivateKeyJWT{ClientID: DefaultFAPIClientID, Issuer: meta.Issuer, Signer: sig},
		DPoP: fapi.KeyDPoP{Key: dpop, Now: clock.Now}, Now: clock.Now}
	return &fapiWorld{e: e, meta: meta, client: client}
}

// begin pushes a request for "openid accounts offline_access".
func (w *fapiWorld) begin(t *testing.T) *fapi.Attempt {
	t.Helper()
	a, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: "http://127.0.0.1:8400/cb", Scope: "openid accounts offline_access",
		AuthorizationDetails: json.RawMessage(`[{"type":"account_information","actions":["read"]}]`),
		Claims:               json.RawMessage(`{"id_token":{"acr":{"essential":true}}}`)})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return a
}

// callback plays the browser and the app: open the authorization URL,
// take the redirect, check it.
func (w *fapiWorld) callback(t *testing.T, a *fapi.Attempt) (string, error) {
	t.Helper()
	res, err := noRedirects().Get(a.AuthorizationURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize answered %d", res.StatusCode)
	}
	p, err := fapi.ParseCallbackURL(res.Header.Get("Location"))
	if err != nil {
		t.Fatalf("ParseCallbackURL: %v", err)
	}
	return a.CheckCallback(p, w.meta.Issuer, fapi.RequireIss(w.meta, true), w.e.clock.Now())
}

// authorized runs an attempt through approval and the code exchange.
func (w *fapiWorld) authorized(t *testing.T) (*fapi.Attempt, *fapi.Token) {
	t.Helper()
	a := w.begin(t)
	code, err := w.callback(t, a)
	if err != nil {
		t.Fatalf("CheckCallback: %v", err)
	}
	tok, err := w.client.Exchange(t.Context(), a, code)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return a, tok
}

func TestFAPIPackageClientFlow(t *testing.T) {
	for _, typ := range []string{keyring.TypeECP256, keyring.TypeRSA2048} {
		t.Run(typ, func(t *testing.T) {
			w := newFAPIWorld(t, typ)
			a, tok := w.authorized(t)
			if w.client.DPoPNonce() == "" || w.e.s.FAPIStats().NonceChallenges != 1 {
				t.Fatalf("the nonce challenge was not met once: %+v", w.e.s.FAPIStats())
			}
			now := w.e.clock.Now()
			if tok.TokenType != fapi.TokenTypeDPoP || !tok.ExpiresAt.Equal(now.Add(5*time.Minute)) ||
				!tok.RefreshTokenExpiresAt.Equal(now.Add(DefaultFAPIGrantTTL)) || tok.Scope != "openid accounts offline_access" ||
				string(tok.AuthorizationDetails) != `[{"type":"account_information","actions":["read"]}]` {
				t.Fatalf("token %v details %s", tok, tok.AuthorizationDetails)
			}
			keys := &fapi.JWKS{HTTP: noRedirects(), URL: w.meta.JWKSURI}
			claims, err := fapi.ValidateIDToken(t.Context(), tok.IDToken, keys, fapi.IDTokenCheck{Issuer: w.meta.Issuer,
				ClientID: DefaultFAPIClientID, Nonce: a.Nonce, Now: now})
			if err != nil {
				t.Fatalf("ValidateIDToken: %v", err)
			}
			if claims.Subject != "alice" || !claims.AuthTime.Equal(now) {
				t.Errorf("claims %+v", claims)
			}

			// Refresh rotates; the rotated token sent again costs the grant.
			w.e.clock.Advance(4 * time.Minute)
			tok2, err := w.client.Refresh(t.Context(), tok.RefreshToken, "")
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if tok2.RefreshToken == tok.RefreshToken || tok2.AccessToken == tok.AccessToken || tok2.Scope != tok.Scope {
				t.Fatal("refresh did not rotate")
			}
			if _, err := w.client.Refresh(t.Context(), tok.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
				t.Fatalf("reused refresh token: %v", err)
			}
			if _, err := w.client.Refresh(t.Context(), tok2.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
				t.Fatalf("refresh after reuse detection: %v", err)
			}

			// Revocation ends a grant.
			_, tok = w.authorized(t)
			if err := w.client.Revoke(t.Context(), tok.RefreshToken); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if _, err := w.client.Refresh(t.Context(), tok.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
				t.Fatalf("refresh after revocation: %v", err)
			}
			if err := w.client.Revoke(t.Context(), tok.RefreshToken); err != nil {
				t.Fatalf("second Revoke: %v", err)
			}
			st := w.e.s.FAPIStats()
			if st.PAR != 2 || st.Exchanges != 2 || st.Refreshes != 1 || st.ReuseDetected != 1 || st.Revocations != 2 || st.NonceChallenges != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestFAPIPackageClientDenialAndWithdrawal(t *testing.T) {
	w := newFAPIWorld(t, keyring.TypeECP256)
	w.e.s.SetFAPIDeny(true)
	_, err := w.callback(t, w.begin(t))
	var denial *fapi.Denial
	if !errors.As(err, &denial) || denial.Code != "access_denied" {
		t.Fatalf("CheckCallback of a denial: %v", err)
	}
	w.e.s.SetFAPIDeny(false)
	_, tok := w.authorized(t)
	if n := w.e.s.WithdrawFAPIGrants("alice"); n != 1 {
		t.Fatalf("withdrew %d grants", n)
	}
	if _, err := w.client.Refresh(t.Context(), tok.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
		t.Fatalf("refresh after withdrawal: %v", err)
	}
	// A replayed code is refused and takes its tokens with it.
	a := w.begin(t)
	code, err := w.callback(t, a)
	if err != nil {
		t.Fatal(err)
	}
	tok, err = w.client.Exchange(t.Context(), a, code)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.Exchange(t.Context(), a, code); !fapi.IsInvalidGrant(err) {
		t.Fatalf("code replay: %v", err)
	}
	if _, err := w.client.Refresh(t.Context(), tok.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
		t.Fatalf("refresh after code replay: %v", err)
	}
	// The wrong issuer in the callback is caught by the client.
	a = w.begin(t)
	res, err := noRedirects().Get(a.AuthorizationURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	p, _ := fapi.ParseCallbackURL(res.Header.Get("Location"))
	var cbErr *fapi.CallbackError
	if _, err := a.CheckCallback(p, "https://bank.example", true, w.e.clock.Now()); !errors.As(err, &cbErr) || cbErr.Check != fapi.CheckIss {
		t.Fatalf("wrong issuer: %v", err)
	}
	// A bank that keeps refresh tokens: the answers carry none, and the
	// one held keeps working.
	w.e.s.SetFAPIRefreshRotation(false)
	_, tok = w.authorized(t)
	for range 2 {
		t2, err := w.client.Refresh(t.Context(), tok.RefreshToken, "")
		if err != nil || t2.RefreshToken != "" {
			t.Fatalf("Refresh without rotation: %v", err)
		}
	}
}
