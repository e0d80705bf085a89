package fapi_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

func TestBeginPushesFAPIRequest(t *testing.T) {
	w := newWorld(t)
	a, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: redirectURI, Scope: "openid accounts offline_access",
		AuthorizationDetails: json.RawMessage("[\n {\"type\": \"payment_initiation\", \"instructedAmount\": {\"currency\": \"EUR\", \"amount\": \"123.50\"}}\n]"),
		Claims:               json.RawMessage(`{"id_token": {"openbanking_intent_id": {"value": "urn:bank:intent:58923", "essential": true}}}`),
		Params:               map[string]string{"acr_values": "urn:openbanking:psd2:sca", "ui_locales": "en"}})
	if err != nil {
		t.Fatal(err)
	}
	f := w.as.LastPAR()
	jkt, _ := keyring.Thumbprint(mustPublic(t, w.dpopKey))
	for name, want := range map[string]string{
		"response_type": "code", "client_id": clientID, "redirect_uri": redirectURI, "scope": "openid accounts offline_access",
		"state": a.State, "nonce": a.Nonce, "code_challenge": fapi.S256Challenge(a.Verifier), "code_challenge_method": "S256",
		"dpop_jkt": jkt, "prompt": "consent", "acr_values": "urn:openbanking:psd2:sca", "ui_locales": "en",
		"authorization_details": `[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"123.50"}}]`,
		"claims":                `{"id_token":{"openbanking_intent_id":{"value":"urn:bank:intent:58923","essential":true}}}`,
		"client_assertion_type": fapi.ClientAssertionType,
	} {
		if got := f.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !fapi.ValidVerifier(a.Verifier) || len(a.State) < 43 || len(a.Nonce) < 43 {
		t.Error("attempt secrets too short")
	}
	if !a.ExpiresAt.Equal(t0.Add(fapi.DefaultAttemptTTL)) || !a.RequestURIExpiresAt.Equal(t0.Add(60*time.Second)) {
		t.Errorf("expiry %v, request_uri expiry %v", a.ExpiresAt, a.RequestURIExpiresAt)
	}
	u, err := url.Parse(a.AuthorizationURL)
	if err != nil || u.Path != "/authorize" {
		t.Fatalf("authorization URL %s", a.AuthorizationURL)
	}
	q := u.Query()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"client_id", "request_uri"}) || q.Get("client_id") != clientID ||
		!strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Errorf("authorization URL query %v", q)
	}
}

func TestPushWithoutOpenID(t *testing.T) {
	w := newWorld(t)
	a, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: redirectURI, Scope: "accounts offline_access", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f := w.as.LastPAR()
	if a.Nonce != "" || f.Has("nonce") || f.Has("prompt") || f.Has("authorization_details") || f.Has("claims") {
		t.Errorf("a non-OpenID request carried %v", f)
	}
	if !a.ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("expiry %v", a.ExpiresAt)
	}
}

func TestPushDPoPNonceRetry(t *testing.T) {
	w := newWorld(t)
	w.as.RequireNonce = true
	w.begin(t, nil)
	if n := w.as.Hits("/par"); n != 2 {
		t.Fatalf("PAR requests %d, want 2 (challenge, retry)", n)
	}
	if w.client.DPoPNonce() != "server-nonce-1" {
		t.Errorf("nonce %q", w.client.DPoPNonce())
	}
	// The nonce is kept: the next push needs no challenge.
	w.begin(t, nil)
	if n := w.as.Hits("/par"); n != 3 {
		t.Errorf("PAR requests %d, want 3", n)
	}
}

func TestPushRefusesBadInput(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		name string
		r    fapi.BeginRequest
		want string
	}{
		{"reserved param", fapi.BeginRequest{RedirectURI: redirectURI, Params: map[string]string{"redirect_uri": "https://evil.example/"}}, `parameter "redirect_uri" is set by bankauth`},
		{"prompt", fapi.BeginRequest{RedirectURI: redirectURI, Params: map[string]string{"prompt": "none"}}, `parameter "prompt"`},
		{"dpop_jkt", fapi.BeginRequest{RedirectURI: redirectURI, Params: map[string]string{"dpop_jkt": "x"}}, `parameter "dpop_jkt"`},
		{"authorization_details object", fapi.BeginRequest{RedirectURI: redirectURI, AuthorizationDetails: json.RawMessage(`{"type":"x"}`)}, "authorization_details must be a JSON array"},
		{"authorization_details without type", fapi.BeginRequest{RedirectURI: redirectURI, AuthorizationDetails: json.RawMessage(`[{"actions":["read"]}]`)}, `element 0 has no string "type"`},
		{"authorization_details empty", fapi.BeginRequest{RedirectURI: redirectURI, AuthorizationDetails: json.RawMessage(`[]`)}, "must not be empty"},
		{"claims array", fapi.BeginRequest{RedirectURI: redirectURI, Claims: json.RawMessage(`[1]`)}, "claims must be a JSON object"},
		{"relative redirect", fapi.BeginRequest{RedirectURI: "/cb"}, "redirect_uri must be an absolute URL"},
	} {
		_, err := w.client.Begin(t.Context(), c.r)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if n := w.as.Hits("/par"); n != 0 {
		t.Errorf("%d bad requests reached the AS", n)
	}
}

func TestPushRefusal(t *testing.T) {
	w := newWorld(t)
	w.client.Auth = fapi.PrivateKeyJWT{ClientID: clientID, Issuer: w.meta.TokenEndpoint, Signer: w.sig} // wrong aud
	_, err := w.client.Begin(t.Context(), fapi.BeginRequest{RedirectURI: redirectURI, Scope: "accounts"})
	var e *fapi.Error
	if !asError(err, &e) || e.Step != fapi.StepPAR || e.Status != 401 || e.Code != "invalid_client" {
		t.Fatalf("assertion for the token endpoint: %v", err)
	}
}

func TestAuthorizationURLKeepsEndpointQuery(t *testing.T) {
	got, err := fapi.AuthorizationURL(&fapi.Metadata{AuthorizationEndpoint: "https://as.bank.example/auth?tenant=ob"}, "c 1", "urn:x:1")
	if err != nil || got != "https://as.bank.example/auth?client_id=c+1&request_uri=urn%3Ax%3A1&tenant=ob" {
		t.Errorf("%s %v", got, err)
	}
}

func mustPublic(t *testing.T, k *keyring.Key) any {
	t.Helper()
	pub, err := k.Latest().Public()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
