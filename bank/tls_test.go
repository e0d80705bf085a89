package bank_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
)

// mtlsBank is an emulator behind a TLS server that requires a client
// certificate issued by clientCA; it records the subject it saw.
type mtlsBank struct {
	emu     *emulator.Server
	url     string
	caPEM   string
	subject atomic.Value
}

func newMTLSBank(t *testing.T, clientCA *testpki.CA) *mtlsBank {
	t.Helper()
	serverCA, err := testpki.NewCA("bank server CA")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := serverCA.ServerTLS(clientCA)
	if err != nil {
		t.Fatal(err)
	}
	b := &mtlsBank{emu: emulator.New(emulator.Options{}), caPEM: string(serverCA.CertPEM)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			b.subject.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		b.emu.ServeHTTP(w, r)
	}))
	srv.TLS = tlsCfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func TestMutualTLSPresentsTheClientCertificate(t *testing.T) {
	clientCA, err := testpki.NewCA("bank client CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := clientCA.Client("partner-7", 2048)
	if err != nil {
		t.Fatal(err)
	}
	fake := newMTLSBank(t, clientCA)
	for _, provider := range emulator.Providers {
		t.Run(provider, func(t *testing.T) {
			cfg := configFor(t, provider, fake.url)
			cfg.CACert = fake.caPEM
			cfg.TLSClientCert, cfg.TLSClientKey = string(leaf.CertPEM), string(leaf.KeyPEM)
			tok, err := fetch(t, cfg, nil)
			if err != nil {
				t.Fatalf("fetch over mTLS: %v", err)
			}
			if !fake.emu.TokenValid(provider, tok.AccessToken) {
				t.Fatal("bank does not know the token")
			}
			if got := fake.subject.Load(); got != "partner-7" {
				t.Fatalf("bank saw client certificate %v, want CN=partner-7", got)
			}
		})
	}

	// Without a certificate, or with one from another CA, the handshake fails
	// and the error names the provider, never the key.
	other, _ := testpki.NewCA("someone else")
	stranger, _ := other.Client("stranger", 0)
	for name, mutate := range map[string]func(*bank.Config){
		"no certificate": func(c *bank.Config) {},
		"unknown issuer": func(c *bank.Config) {
			c.TLSClientCert, c.TLSClientKey = string(stranger.CertPEM), string(stranger.KeyPEM)
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := configFor(t, emulator.Rakbank, fake.url)
			cfg.CACert = fake.caPEM
			mutate(cfg)
			_, err := fetch(t, cfg, nil)
			var ue *bank.UpstreamError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "rakbank token request failed") {
				t.Fatalf("error %v, want an UpstreamError naming rakbank", err)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error shows the key: %v", err)
			}
		})
	}
}

func TestClientCertificateValidationNamesTheField(t *testing.T) {
	ca, err := testpki.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ca.Client("a", 0)
	b, _ := ca.Client("b", 2048)
	rsaPKCS1 := pkcs1(t, b.KeyPEM)
	cases := []struct {
		name       string
		cert, key  string
		field, msg string
	}{
		{"cert without key", string(a.CertPEM), "", "tls_client_key", "required"},
		{"key without cert", "", string(a.KeyPEM), "tls_client_cert", "required"},
		{"cert not PEM", "hello", string(a.KeyPEM), "tls_client_cert", "no PEM"},
		{"cert garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", string(a.KeyPEM), "tls_client_cert", "not a valid"},
		{"key is a cert", string(a.CertPEM), string(a.CertPEM), "tls_client_key", "no PEM"},
		{"key garbage", string(a.CertPEM), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "tls_client_key", "not a valid"},
		{"key of another cert", string(a.CertPEM), string(b.KeyPEM), "tls_client_key", "does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &bank.Config{Provider: "etranzact", Settings: map[string]string{"username": "u"},
				Secrets: map[string]string{"password": "p"}, TLSClientCert: tc.cert, TLSClientKey: tc.key}
			var fe *bank.FieldError
			err := cfg.Validate()
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Message, tc.msg) {
				t.Fatalf("Validate() = %v, want %s: ...%s...", err, tc.field, tc.msg)
			}
			if strings.Contains(err.Error(), "BEGIN") {
				t.Fatalf("error quotes PEM input: %v", err)
			}
		})
	}
	for name, pair := range map[string][2]string{"PKCS8 EC": {string(a.CertPEM), string(a.KeyPEM)}, "PKCS1 RSA": {string(b.CertPEM), rsaPKCS1}} {
		cfg := &bank.Config{Provider: "etranzact", Settings: map[string]string{"username": "u"},
			Secrets: map[string]string{"password": "p"}, TLSClientCert: pair[0], TLSClientKey: pair[1]}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: valid pair rejected: %v", name, err)
		}
		if _, err := bank.NewClient(cfg, nil, loopback); err != nil {
			t.Errorf("%s: NewClient: %v", name, err)
		}
	}
}

// pkcs1 re-encodes a PKCS#8 RSA key as "RSA PRIVATE KEY" (PKCS#1).
func pkcs1(t *testing.T, keyPEM []byte) string {
	t.Helper()
	k, err := bank.ParsePrivateKeyPEM(string(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return rsaToPKCS1(t, k)
}

// Configs that trust the same CA but present different client certificates
// (or none) never share a connection: a client certificate belongs to the
// TLS connection, so a pooled connection of one config must not carry
// another config's request.
func TestClientCertificatesAreNotSharedBetweenConfigs(t *testing.T) {
	clientCA, _ := testpki.NewCA("bank client CA")
	fake := newMTLSBank(t, clientCA)
	alice, _ := clientCA.Client("alice", 0)
	bob, _ := clientCA.Client("bob", 0)
	newClient := func(leaf *testpki.Leaf) *bank.Client {
		cfg := configFor(t, emulator.Etranzact, fake.url)
		cfg.CACert = fake.caPEM
		if leaf != nil {
			cfg.TLSClientCert, cfg.TLSClientKey = string(leaf.CertPEM), string(leaf.KeyPEM)
		}
		c, err := bank.NewClient(cfg, nil, loopback)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	a, b, none := newClient(alice), newClient(bob), newClient(nil)
	for i := 0; i < 3; i++ {
		for _, tc := range []struct {
			c    *bank.Client
			want string
		}{{a, "alice"}, {b, "bob"}} {
			if _, err := tc.c.Fetch(t.Context(), nil); err != nil {
				t.Fatal(err)
			}
			if got := fake.subject.Load(); got != tc.want {
				t.Fatalf("round %d: the bank saw %v for %s's request", i, got, tc.want)
			}
		}
		if _, err := none.Fetch(t.Context(), nil); err == nil {
			t.Fatalf("round %d: a config without a client certificate got through on another config's connection", i)
		}
	}
}
