package interop_test

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/interop"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
)

// secret holds characters that RFC 6749's form-encoding changes ('+', '/',
// '=', ' ', '%', ':'), so an encoding mistake cannot pass unnoticed.
const secret = "fosite+secret/with=odd chars%:"

type world struct {
	as     *interop.Server
	client *testpki.Leaf // mTLS client certificate
	signer *testpki.Leaf // RSA key for RS256/PS256 assertions
	ec     *testpki.Leaf // EC key for ES256 assertions
}

func newWorld(t *testing.T) *world {
	t.Helper()
	serverCA, err := testpki.NewCA("AS server CA")
	if err != nil {
		t.Fatal(err)
	}
	clientCA, _ := testpki.NewCA("AS client CA")
	tlsCfg, err := serverCA.ServerTLS(clientCA)
	if err != nil {
		t.Fatal(err)
	}
	as, err := interop.Start(tlsCfg, serverCA.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	w := &world{as: as}
	w.client, _ = clientCA.Client("bankauth-interop", 2048)
	w.signer, _ = clientCA.Client("signer", 2048)
	w.ec, _ = clientCA.Client("ec-signer", 0)
	return w
}

// config is an oauth2 config for client id against the fosite server.
func (w *world) config(id string, settings, secrets map[string]string) *bank.Config {
	cfg := &bank.Config{Provider: "oauth2", CACert: string(w.as.CACertPEM),
		Settings: map[string]string{"token_url": w.as.TokenURL, "client_id": id, "scope": "accounts payments"},
		Secrets:  map[string]string{}}
	for k, v := range settings {
		cfg.Settings[k] = v
	}
	for k, v := range secrets {
		cfg.Secrets[k] = v
	}
	return cfg
}

func fetch(t *testing.T, cfg *bank.Config) (*bank.Token, error) {
	t.Helper()
	c, err := bank.NewClient(cfg, nil, loopback)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close()
	return c.Fetch(context.Background(), nil)
}

// mustFetch gets a token twice (a fresh assertion each time) and checks
// fosite's introspection accepts both as issued to id.
func (w *world) mustFetch(t *testing.T, id string, cfg *bank.Config) {
	t.Helper()
	for i := 0; i < 2; i++ {
		tok, err := fetch(t, cfg)
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		if got, ok := w.as.Valid(context.Background(), tok.AccessToken); !ok || got != id {
			t.Fatalf("fosite does not recognise the token (client %q, active %t)", got, ok)
		}
		if tok.Scope != "accounts payments" || !strings.EqualFold(tok.TokenType, "bearer") || tok.Lifetime().Minutes() < 9 {
			t.Fatalf("token %v", tok)
		}
	}
}

func register(t *testing.T, as *interop.Server, c interop.Client) {
	t.Helper()
	c.Scopes = []string{"accounts", "payments"}
	if err := as.Register(c); err != nil {
		t.Fatal(err)
	}
}

func TestFositeClientSecretBasic(t *testing.T) {
	w := newWorld(t)
	register(t, w.as, interop.Client{ID: "basic client", Secret: secret, AuthMethod: "client_secret_basic"})
	w.mustFetch(t, "basic client", w.config("basic client", nil, map[string]string{"client_secret": secret}))

	// fosite decodes Basic credentials as RFC 6749 says; raw encoding of a
	// secret with '+' or '%' is refused (400 invalid_request when it cannot
	// be decoded, 401 invalid_client when it decodes to another secret).
	_, err := fetch(t, w.config("basic client", map[string]string{"basic_encoding": "raw"}, map[string]string{"client_secret": secret}))
	var ue *bank.UpstreamError
	if !errors.As(err, &ue) || !ue.Rejected() || (ue.Code != "invalid_client" && ue.Code != "invalid_request") {
		t.Fatalf("raw encoding against an RFC server: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatal("error shows the secret")
	}
	// With a secret RFC 6749 leaves alone both encodings agree.
	register(t, w.as, interop.Client{ID: "plain", Secret: "plainSecret123", AuthMethod: "client_secret_basic"})
	w.mustFetch(t, "plain", w.config("plain", map[string]string{"basic_encoding": "raw"}, map[string]string{"client_secret": "plainSecret123"}))
}

func TestFositeClientSecretPost(t *testing.T) {
	w := newWorld(t)
	register(t, w.as, interop.Client{ID: "post-client", Secret: secret, AuthMethod: "client_secret_post"})
	w.mustFetch(t, "post-client", w.config("post-client", map[string]string{"auth_method": "client_secret_post"},
		map[string]string{"client_secret": secret}))
	// The server holds the client to its registered method.
	if _, err := fetch(t, w.config("post-client", nil, map[string]string{"client_secret": secret})); err == nil {
		t.Fatal("client_secret_basic accepted for a client_secret_post client")
	}
	// A wrong secret: the standard error shape, named.
	_, err := fetch(t, w.config("post-client", map[string]string{"auth_method": "client_secret_post"},
		map[string]string{"client_secret": "wrong-secret"}))
	if err == nil || !strings.Contains(err.Error(), "oauth2 token request failed: HTTP 401: bank code invalid_client") {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestFositePrivateKeyJWT(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		alg string
		key *testpki.Leaf
	}{{"RS256", w.signer}, {"PS256", w.signer}, {"ES256", w.ec}} {
		t.Run(tc.alg, func(t *testing.T) {
			id := "jwt-" + tc.alg
			key, _ := bank.ParsePrivateKeyPEM(string(tc.key.KeyPEM))
			register(t, w.as, interop.Client{ID: id, AuthMethod: "private_key_jwt", SigningAlg: tc.alg,
				KeyID: "k-" + tc.alg, PublicKey: key.(crypto.Signer).Public()})
			// Two fetches in a row: fosite refuses a reused jti, so this
			// also proves each assertion is fresh.
			w.mustFetch(t, id, w.config(id, map[string]string{"auth_method": "private_key_jwt", "signing_alg": tc.alg, "key_id": "k-" + tc.alg},
				map[string]string{"private_key": string(tc.key.KeyPEM)}))
		})
	}
	// An assertion addressed to another audience is refused by the server.
	_, err := fetch(t, w.config("jwt-PS256", map[string]string{"auth_method": "private_key_jwt", "signing_alg": "PS256",
		"assertion_audience": "https://someone-else.example"}, map[string]string{"private_key": string(w.signer.KeyPEM)}))
	if err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("wrong audience: %v", err)
	}
}

func TestFositeTLSClientAuth(t *testing.T) {
	w := newWorld(t)
	register(t, w.as, interop.Client{ID: "mtls-client", AuthMethod: "tls_client_auth", SubjectDN: w.client.Cert.Subject.String()})
	cfg := w.config("mtls-client", map[string]string{"auth_method": "tls_client_auth"}, nil)
	cfg.TLSClientCert, cfg.TLSClientKey = string(w.client.CertPEM), string(w.client.KeyPEM)
	w.mustFetch(t, "mtls-client", cfg)
	// Another certificate from the same CA has the wrong subject.
	cfg.TLSClientCert, cfg.TLSClientKey = string(w.ec.CertPEM), string(w.ec.KeyPEM)
	if _, err := fetch(t, cfg); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("wrong certificate subject: %v", err)
	}
}

// An authorization server that wants the issuer as the assertion's audience
// (UAE Open Finance, UK Open Banking) accepts assertion_audience=<issuer>
// and refuses the default (the token URL).
func TestFositePrivateKeyJWTIssuerAudience(t *testing.T) {
	serverCA, _ := testpki.NewCA("AS server CA")
	tlsCfg, err := serverCA.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://as.bank.example"
	as, err := interop.StartWithAssertionAudience(tlsCfg, serverCA.CertPEM, issuer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	ca, _ := testpki.NewCA("keys")
	signer, _ := ca.Client("signer", 2048)
	key, _ := bank.ParsePrivateKeyPEM(string(signer.KeyPEM))
	register(t, as, interop.Client{ID: "ob-client", AuthMethod: "private_key_jwt", SigningAlg: "PS256", PublicKey: key.(crypto.Signer).Public()})
	w := &world{as: as}
	settings := map[string]string{"auth_method": "private_key_jwt", "signing_alg": "PS256", "assertion_audience": issuer}
	w.mustFetch(t, "ob-client", w.config("ob-client", settings, map[string]string{"private_key": string(signer.KeyPEM)}))
	delete(settings, "assertion_audience")
	if _, err := fetch(t, w.config("ob-client", settings, map[string]string{"private_key": string(signer.KeyPEM)})); err == nil ||
		!strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("token URL as audience at an issuer-audience server: %v", err)
	}
}

// A profile (not the oauth2 provider) can authenticate with an RFC 7523
// client assertion too; fosite accepts it.
func TestFositeProfileWithClientAssertion(t *testing.T) {
	w := newWorld(t)
	key, _ := bank.ParsePrivateKeyPEM(string(w.ec.KeyPEM))
	register(t, w.as, interop.Client{ID: "profile-jwt", AuthMethod: "private_key_jwt", SigningAlg: "ES256", KeyID: "k1",
		PublicKey: key.(crypto.Signer).Public()})
	p, err := bank.ParseProfile([]byte(`{
	  "fields": [{"name": "client_id", "required": true}, {"name": "private_key", "secret": true, "required": true}],
	  "steps": [{"name": "token", "method": "POST", "path": "/oauth2/token",
	    "client_assertion": {"client_id": "{{field.client_id}}", "private_key": "{{field.private_key}}", "alg": "ES256", "key_id": "k1"},
	    "body": {"type": "form", "fields": {"grant_type": "client_credentials", "client_id": "{{field.client_id}}", "scope": "accounts payments"}}}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := bank.NewProfileProvider("jwtbank", p)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &bank.Config{Provider: "jwtbank", CACert: string(w.as.CACertPEM), BaseURL: w.as.URL,
		Settings: map[string]string{"client_id": "profile-jwt"},
		Secrets:  map[string]string{"private_key": string(w.ec.KeyPEM)}}
	cfg.UseProvider(prov)
	w.mustFetch(t, "profile-jwt", cfg)
}

// loopback lets the client talk to the interop servers on 127.0.0.1, which
// the production egress policy refuses.
var loopback = func() bank.Option {
	e, err := bank.NewEgressVia(bank.EgressPolicy{AllowLoopback: true}, nil)
	if err != nil {
		panic(err)
	}
	return bank.WithEgress(e)
}()
