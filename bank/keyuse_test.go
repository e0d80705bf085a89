package bank_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

func TestEndpointUnder(t *testing.T) {
	for _, c := range []struct {
		allowed, endpoint string
		want              bool
	}{
		{"https://as1.bank.example/", "https://as1.bank.example/token", true},
		{"https://as1.bank.example", "https://as1.bank.example/oauth2/token", true},
		{"https://as1.bank.example/", "https://AS1.Bank.Example./token", true},
		{"https://as1.bank.example/", "https://as1.bank.example:443/token", true},
		{"https://as1.bank.example:443/oauth", "https://as1.bank.example/oauth/token?x=1", true},
		{"https://as1.bank.example/oauth", "https://as1.bank.example/oauth", true},
		{"https://as1.bank.example/oauth/", "https://as1.bank.example/oauth/token", true},
		{"http://127.0.0.1:8300/", "http://127.0.0.1:8300/token", true},
		{"http://127.0.0.1/", "http://127.0.0.1:80/token", true},

		{"https://as1.bank.example/oauth", "https://as1.bank.example/oauthx/token", false},
		{"https://as1.bank.example/oauth/", "https://as1.bank.example/oauth", false},
		{"https://as1.bank.example/", "http://as1.bank.example/token", false},
		{"https://as1.bank.example/", "https://as1.bank.example:8443/token", false},
		{"https://as1.bank.example/", "https://as1.bank.example.evil.example/token", false},
		{"https://as1.bank.example/", "https://evil.example/as1.bank.example/token", false},
		{"https://as1.bank.example/", "https://user@as1.bank.example/token", false},
		{"https://as1.bank.example/oauth", "https://as1.bank.example/oauth/../evil", false},
		{"https://as1.bank.example/oauth", "https://as1.bank.example/oauth/%2e%2e/evil", false},
		{"https://as1.bank.example/oauth", "https://as1.bank.example/oauth/./token", false},
		{"http://127.0.0.1:8300/", "http://127.0.0.1:8301/token", false},
		{"https://as1.bank.example/", "as1.bank.example/token", false},
		{"https://as1.bank.example/", "", false},
	} {
		if got := bank.EndpointUnder(c.allowed, c.endpoint); got != c.want {
			t.Errorf("EndpointUnder(%q, %q) = %v", c.allowed, c.endpoint, got)
		}
	}
}

func TestValidateAllowedEndpoint(t *testing.T) {
	for _, ok := range []string{"https://as.bank.example/", "https://as.bank.example", "https://as.bank.example:8443/oauth", "http://127.0.0.1:8300/"} {
		if err := bank.ValidateAllowedEndpoint(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"as9.bank.example", "http://as.bank.example/", "https://u@as.bank.example/", "https://as.bank.example/?a=1",
		"https://as.bank.example/#f", "https://as.bank.example/a/../b", "https://169.254.169.254/", "ftp://as.bank.example/"} {
		err := bank.ValidateAllowedEndpoint(bad)
		if err == nil || !strings.HasPrefix(err.Error(), "allowed_endpoints: ") || strings.Contains(err.Error(), bad) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// pinnedSigner is a kept key whose purposes and pins a test may change
// after the client was built, as a key write does between fetches.
type pinnedSigner struct {
	mu  sync.Mutex
	key *ecdsa.PrivateKey
	use bank.KeyUse
}

func (s *pinnedSigner) KID() string { return "k1" }
func (s *pinnedSigner) SignJWT(typ string, claims any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign([]byte(`{}`))
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}
func (s *pinnedSigner) DPoPProof(string, string, string, string, time.Time) (string, error) {
	return "", errors.New("no DPoP")
}
func (s *pinnedSigner) TLSCertificate() (*tls.Certificate, error) {
	return nil, errors.New("no certificate")
}
func (s *pinnedSigner) Use() bank.KeyUse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.use
}

// The pins are checked where the client assertion is signed, on every
// fetch: a client built while the config fitted them refuses to sign once
// they no longer do, and nothing is sent.
func TestKeptKeyAssertionCheckedAtEveryFetch(t *testing.T) {
	ts := newTokenServer(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := &pinnedSigner{key: key, use: bank.KeyUse{Name: "sig", Purposes: []string{bank.PurposeClientAuth},
		AllowedEndpoints: []string{ts.srv.URL + "/oauth2/"}, AllowedAudiences: []string{"https://issuer.bank.example"}}}
	cfg := oauthConfig(ts.tokenAt, map[string]string{"auth_method": "private_key_jwt", "signing_key": "sig",
		"assertion_audience": "https://issuer.bank.example"}, nil)
	cfg.UseKeys(bank.Keys{Signing: s})
	c, err := bank.NewClient(cfg, nil, loopback)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for field, narrow := range map[string]func(u *bank.KeyUse){
		"allowed_endpoints": func(u *bank.KeyUse) { u.AllowedEndpoints = []string{ts.srv.URL + "/other/"} },
		"allowed_audiences": func(u *bank.KeyUse) { u.AllowedAudiences = []string{"https://other.bank.example"} },
		"purpose":           func(u *bank.KeyUse) { u.Purposes = []string{bank.PurposeRequestSigning} },
	} {
		ts.mu.Lock()
		ts.form = nil
		ts.mu.Unlock()
		s.mu.Lock()
		saved := s.use
		narrow(&s.use)
		s.mu.Unlock()
		_, err := c.Fetch(context.Background(), nil)
		if err == nil || !strings.Contains(err.Error(), `key "sig"`) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s narrowed: %v", field, err)
		}
		if form, _ := ts.last(); form != nil {
			t.Errorf("%s narrowed: the bank was sent %v", field, form)
		}
		s.mu.Lock()
		s.use = saved
		s.mu.Unlock()
	}
	// Validate refuses such a config outright, naming the key and the field.
	s.use.AllowedAudiences = []string{"https://other.bank.example"}
	if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), `signing_key: key "sig" does not allow this client assertion audience`) {
		t.Errorf("Validate: %v", err)
	}
}
