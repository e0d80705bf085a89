package oidcop_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/oidcop"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

const (
	clientID = "bankauth-fapi"
	redirect = "https://app.example/cb"
)

// startAS runs oidc-provider in its FAPI 2.0 profile with DPoP nonces,
// the client registered with clientKey's JWK Set, and returns its issuer.
func startAS(t *testing.T, clientKey *keyring.Key) string {
	t.Helper()
	set, err := clientKey.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(set)
	op, err := oidcop.Start(oidcop.Options{FAPI: "2.0", DPoPNonce: true, Clients: []oidcop.Client{{
		ClientID: clientID, RedirectURIs: []string{redirect}, TokenEndpointAuthMethod: "private_key_jwt",
		TokenEndpointAuthSigningAlg: "ES256", JWKS: jwks, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, DPoPBoundAccessTokens: true, IDTokenSignedResponseAlg: "ES256",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(op.Log())
		}
		op.Close()
	})
	return op.Issuer
}

// Package fapi's FAPI 2.0 flow against oidc-provider: discovery, the profile check,
// PAR (with its DPoP nonce challenge), the automated user, the callback
// with RFC 9207 iss required, the DPoP-bound code exchange, the ID token,
// refresh with rotation and reuse detection, revocation.
func TestFAPI2FlowWithOIDCProvider(t *testing.T) {
	sig, _ := keyring.Generate(keyring.TypeECP256, nil, time.Now())
	dk, _ := keyring.Generate(keyring.TypeECP256, nil, time.Now())
	iss := startAS(t, sig)
	c, meta := newClient(t, iss, sig, dk)
	hc := c.HTTP
	if err := fapi.CheckFAPI2(meta, fapi.ClientConfig{AuthMethod: fapi.AuthPrivateKeyJWT, SigningAlg: "ES256", DPoPAlg: "ES256"}); err != nil {
		t.Fatal(err)
	}
	a, err := c.Begin(t.Context(), fapi.BeginRequest{RedirectURI: redirect, Scope: "openid accounts offline_access"})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if c.DPoPNonce() == "" {
		t.Error("no DPoP nonce learned at PAR")
	}
	code := approve(t, a, iss, meta)
	tok, err := c.Exchange(t.Context(), a, code)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.TokenType != fapi.TokenTypeDPoP || tok.RefreshToken == "" {
		t.Fatalf("token %v", tok)
	}
	keys := &fapi.JWKS{HTTP: hc, URL: meta.JWKSURI}
	if _, err := fapi.ValidateIDToken(t.Context(), tok.IDToken, keys, fapi.IDTokenCheck{Issuer: iss, ClientID: clientID,
		Nonce: a.Nonce, Now: time.Now()}); err != nil {
		t.Fatalf("ID token: %v", err)
	}
	tok2, err := c.Refresh(t.Context(), tok.RefreshToken, "")
	if err != nil || tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh with rotation: %v", err)
	}
	if _, err := c.Refresh(t.Context(), tok.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
		t.Errorf("reused refresh token: %v", err)
	}
	// Reuse detection revoked the whole grant, the rotated token with it.
	if _, err := c.Refresh(t.Context(), tok2.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
		t.Errorf("refresh after reuse detection: %v", err)
	}
}

// Revocation (RFC 7009) of a consent's refresh token at the bank.
func TestFAPI2RevocationWithOIDCProvider(t *testing.T) {
	sig, _ := keyring.Generate(keyring.TypeECP256, nil, time.Now())
	dk, _ := keyring.Generate(keyring.TypeECP256, nil, time.Now())
	iss := startAS(t, sig)
	c, meta := newClient(t, iss, sig, dk)
	a, err := c.Begin(t.Context(), fapi.BeginRequest{RedirectURI: redirect, Scope: "openid accounts offline_access"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Exchange(t.Context(), a, approve(t, a, iss, meta))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(t.Context(), tok.RefreshToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := c.Refresh(t.Context(), tok.RefreshToken, ""); !fapi.IsInvalidGrant(err) {
		t.Errorf("refresh after revocation: %v", err)
	}
}

// newClient discovers iss and returns package fapi's client for it,
// authenticating with sig and binding tokens to dk.
func newClient(t *testing.T, iss string, sig, dk *keyring.Key) (*fapi.Client, *fapi.Metadata) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	meta, err := fapi.Discover(t.Context(), hc, iss, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &fapi.Client{HTTP: hc, Metadata: meta, ClientID: clientID,
		Auth: fapi.PrivateKeyJWT{ClientID: clientID, Issuer: iss, Signer: sig},
		DPoP: fapi.KeyDPoP{Key: dk, Now: time.Now}, Now: time.Now}, meta
}

// approve runs the automated user through a's authorization URL and
// returns the checked code.
func approve(t *testing.T, a *fapi.Attempt, iss string, meta *fapi.Metadata) string {
	t.Helper()
	loc, err := oidcop.Follow(a.AuthorizationURL, redirect, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := fapi.ParseCallbackURL(loc)
	if err != nil {
		t.Fatal(err)
	}
	code, err := a.CheckCallback(p, iss, fapi.RequireIss(meta, true), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}
