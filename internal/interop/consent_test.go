package interop_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/interop"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

const (
	consentClientID = "bankauth-consent"
	consentRedirect = "https://app.example/cb"
)

// consentWorld is fosite as the AS and a fapi.Client with a private_key_jwt
// key born in the keyring. fosite runs on the real clock, so the client
// does too.
type consentWorld struct {
	as     *interop.ConsentServer
	meta   *fapi.Metadata
	client *fapi.Client
}

func newConsentWorld(t *testing.T) *consentWorld {
	t.Helper()
	as, err := interop.StartConsentServer("alice")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	k, err := keyring.Generate(keyring.TypeECP256, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.Latest().Public()
	if err != nil {
		t.Fatal(err)
	}
	as.Register(interop.ConsentClient{ID: consentClientID, PublicKey: pub, KeyID: k.Latest().KID, SigningAlg: "ES256",
		RedirectURI: consentRedirect, Scopes: []string{"openid", "offline_access", "accounts"}})
	hc := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	meta, err := fapi.Discover(t.Context(), hc, as.Issuer, time.Now())
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return &consentWorld{as: as, meta: meta, client: &fapi.Client{HTTP: hc, Metadata: meta, ClientID: consentClientID,
		Auth: fapi.PrivateKeyJWT{ClientID: consentClientID, Issuer: as.Issuer, Signer: k}, Now: time.Now}}
}

// userAgent opens the authorization URL as the user's browser and returns
// where fosite redirects it.
func userAgent(t *testing.T, authURL string) string {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, consentRedirect+"?") {
		t.Fatalf("authorize answered %d, Location %q", resp.StatusCode, loc)
	}
	return loc
}

// The whole consent flow against fosite, which implements PAR, PKCE,
// private_key_jwt, OpenID Connect, refresh token rotation and revocation
// itself: PAR -> the user approves -> callback -> code exchange -> ID token
// -> refresh -> revoke.
func TestConsentFlowWithFosite(t *testing.T) {
	w := newConsentWorld(t)
	if err := fapi.CheckFAPI2(w.meta, fapi.ClientConfig{AuthMethod: fapi.AuthPrivateKeyJWT, SigningAlg: "ES256"}); err == nil {
		t.Error("a client without DPoP or mTLS passed the FAPI 2.0 check")
	}
	a, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: consentRedirect, Scope: "openid accounts offline_access"})
	if err != nil {
		t.Fatalf("Begin (PAR): %v", err)
	}
	p, err := fapi.ParseCallbackURL(userAgent(t, a.AuthorizationURL))
	if err != nil {
		t.Fatal(err)
	}
	if p.Iss != "" {
		t.Log("fosite now sends iss: require it (RFC 9207)")
	}
	code, err := a.CheckCallback(p, w.meta.Issuer, fapi.RequireIss(w.meta, false), time.Now())
	if err != nil {
		t.Fatalf("CheckCallback: %v", err)
	}
	tok, err := w.client.Exchange(t.Context(), a, code)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.TokenType != fapi.TokenTypeBearer || tok.RefreshToken == "" || tok.IDToken == "" || !w.as.ActiveAccessToken(t.Context(), tok.AccessToken) {
		t.Fatalf("token %v, id_token %t", tok, tok.IDToken != "")
	}
	if !strings.Contains(tok.Scope, "offline_access") {
		t.Errorf("granted scope %q", tok.Scope)
	}
	keys := &fapi.JWKS{HTTP: w.client.HTTP, URL: w.meta.JWKSURI}
	claims, err := fapi.ValidateIDToken(t.Context(), tok.IDToken, keys, fapi.IDTokenCheck{Issuer: w.meta.Issuer,
		ClientID: consentClientID, Nonce: a.Nonce, Now: time.Now()})
	if err != nil {
		t.Fatalf("ValidateIDToken of fosite's ID token: %v", err)
	}
	if claims.Subject != "alice" {
		t.Errorf("sub %q", claims.Subject)
	}

	tok2, err := w.client.Refresh(t.Context(), tok.RefreshToken, "")
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken || !w.as.ActiveAccessToken(t.Context(), tok2.AccessToken) {
		t.Fatal("fosite did not rotate the refresh token")
	}
	if tok2.IDToken != "" {
		if _, err := fapi.ValidateIDToken(t.Context(), tok2.IDToken, keys, fapi.IDTokenCheck{Issuer: w.meta.Issuer,
			ClientID: consentClientID, Nonce: a.Nonce, NonceOptional: true, Now: time.Now()}); err != nil {
			t.Errorf("refresh ID token: %v", err)
		}
	}
	if keys.Fetches() != 1 {
		t.Errorf("JWKS fetched %d times", keys.Fetches())
	}

	if err := w.client.Revoke(t.Context(), tok2.RefreshToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := w.client.Refresh(t.Context(), tok2.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
		t.Fatalf("refresh with a revoked token: %v, want invalid_grant", err)
	}
	for path, want := range map[string]int{interop.ConsentPathPAR: 1, interop.ConsentPathAuthorize: 1, interop.ConsentPathRevoke: 1} {
		if got := w.as.Hits(path); got != want {
			t.Errorf("%s: %d requests, want %d", path, got, want)
		}
	}
}

// authorized runs Begin, the user's approval and the code exchange.
func (w *consentWorld) authorized(t *testing.T, scope string) (*fapi.Attempt, string, *fapi.Token) {
	t.Helper()
	a, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: consentRedirect, Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := fapi.ParseCallbackURL(userAgent(t, a.AuthorizationURL))
	code, err := a.CheckCallback(p, w.meta.Issuer, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := w.client.Exchange(t.Context(), a, code)
	if err != nil {
		t.Fatal(err)
	}
	return a, code, tok
}

// A replayed code is invalid_grant, and fosite then revokes what the code
// gave (RFC 6749 section 4.1.2): the refresh token stops working, which the
// plugin must read as a revoked consent.
func TestConsentCodeReplayWithFosite(t *testing.T) {
	w := newConsentWorld(t)
	a, code, tok := w.authorized(t, "openid accounts offline_access")
	if _, err := w.client.Exchange(t.Context(), a, code); !fapi.IsInvalidGrant(err) {
		t.Fatalf("code replay: %v, want invalid_grant", err)
	}
	if _, err := w.client.Refresh(t.Context(), tok.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
		t.Errorf("refresh after code replay: %v, want invalid_grant", err)
	}
}

// fosite detects a reused (rotated-away) refresh token: invalid_grant.
func TestConsentRefreshReuseWithFosite(t *testing.T) {
	w := newConsentWorld(t)
	_, _, tok := w.authorized(t, "openid offline_access")
	if _, err := w.client.Refresh(t.Context(), tok.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.Refresh(t.Context(), tok.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
		t.Fatalf("reused refresh token: %v, want invalid_grant", err)
	}
}

// A user's refusal comes back as a typed denial.
func TestConsentDeniedWithFosite(t *testing.T) {
	w := newConsentWorld(t)
	a, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: consentRedirect, Scope: "openid accounts",
		Params: map[string]string{"deny": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := fapi.ParseCallbackURL(userAgent(t, a.AuthorizationURL))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.CheckCallback(p, w.meta.Issuer, false, time.Now())
	d, ok := err.(*fapi.Denial)
	if !ok || d.Code != "access_denied" {
		t.Fatalf("denial: %v", err)
	}
}

// fosite refuses an authorization request that skips PAR, and a code
// exchange whose verifier does not match the pushed challenge.
func TestFositeEnforcesPARAndPKCE(t *testing.T) {
	w := newConsentWorld(t)
	resp, err := w.client.HTTP.Get(w.meta.AuthorizationEndpoint + "?response_type=code&client_id=" + consentClientID +
		"&redirect_uri=" + consentRedirect + "&scope=openid&state=abcdefghijk&nonce=abcdefghijk")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && !strings.Contains(loc, "error=") {
		t.Errorf("front-channel request without PAR was served: %d", resp.StatusCode)
	}
	a, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: consentRedirect, Scope: "accounts"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := fapi.ParseCallbackURL(userAgent(t, a.AuthorizationURL))
	other := *a
	pk, _ := fapi.NewPKCE()
	other.Verifier = pk.Verifier
	if _, err := w.client.Exchange(t.Context(), &other, p.Code); !fapi.IsInvalidGrant(err) {
		t.Errorf("exchange with another verifier: %v, want invalid_grant", err)
	}
}
