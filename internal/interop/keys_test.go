package interop_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/interop"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// kept adapts a keyring key to package bank's KeySigner, as the plugin
// does, with the purposes and pins its owner gave it.
type kept struct {
	k   *keyring.Key
	use bank.KeyUse
}

func (s kept) Use() bank.KeyUse { return s.use }

// clientAuth is a client_auth key pinned to the authorization server's
// token endpoint, with that URL as the audience.
func clientAuth(w *world) bank.KeyUse {
	return bank.KeyUse{Name: "client-sig", Purposes: []string{bank.PurposeClientAuth},
		AllowedEndpoints: []string{w.as.URL + "/oauth2/"}, AllowedAudiences: []string{w.as.TokenURL}}
}

func (s kept) KID() string                                    { return s.k.Latest().KID }
func (s kept) SignJWT(typ string, claims any) (string, error) { return s.k.SignJWT(typ, claims) }
func (s kept) DPoPProof(htm, htu, nonce, at string, now time.Time) (string, error) {
	return s.k.DPoPProof(keyring.DPoPRequest{Method: htm, URL: htu, Nonce: nonce, AccessToken: at}, now)
}
func (s kept) TLSCertificate() (*tls.Certificate, error) { return s.k.TLSCertificate() }

func keptKey(t *testing.T, typ string) *keyring.Key {
	t.Helper()
	k, err := keyring.Generate(typ, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fosite accepts the private_key_jwt assertion signed by a kept key
// (PS256, kid = its RFC 7638 thumbprint) for provider oauth2.
func TestFositePrivateKeyJWTWithSigningKey(t *testing.T) {
	w := newWorld(t)
	k := keptKey(t, keyring.TypeRSA2048)
	pub, _ := k.Latest().Public()
	register(t, w.as, interop.Client{ID: "kept-jwt", AuthMethod: "private_key_jwt", SigningAlg: "PS256",
		KeyID: k.Latest().KID, PublicKey: pub})
	cfg := w.config("kept-jwt", map[string]string{"auth_method": "private_key_jwt", "signing_key": "client-sig"}, nil)
	cfg.UseKeys(bank.Keys{Signing: kept{k, clientAuth(w)}})
	w.mustFetch(t, "kept-jwt", cfg)
}

// A profile step's client assertion is signed by signing_key too; the
// profile's private_key field is then not needed.
func TestFositeProfileAssertionWithSigningKey(t *testing.T) {
	w := newWorld(t)
	k := keptKey(t, keyring.TypeECP256)
	pub, _ := k.Latest().Public()
	register(t, w.as, interop.Client{ID: "kept-profile", AuthMethod: "private_key_jwt", SigningAlg: "ES256",
		KeyID: k.Latest().KID, PublicKey: pub})
	p, err := bank.ParseProfile([]byte(`{
	  "fields": [{"name": "client_id", "required": true}, {"name": "private_key", "secret": true, "required": true}],
	  "steps": [{"name": "token", "method": "POST", "path": "/oauth2/token",
	    "client_assertion": {"client_id": "{{field.client_id}}", "private_key": "{{field.private_key}}", "alg": "ES256"},
	    "body": {"type": "form", "fields": {"grant_type": "client_credentials", "client_id": "{{field.client_id}}", "scope": "accounts payments"}}}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := bank.NewProfileProvider("keptbank", p)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &bank.Config{Provider: "keptbank", CACert: string(w.as.CACertPEM), BaseURL: w.as.URL,
		Settings: map[string]string{"client_id": "kept-profile", "signing_key": "client-sig"},
		Secrets:  map[string]string{}}
	cfg.UseProvider(prov)
	cfg.UseKeys(bank.Keys{Signing: kept{k, clientAuth(w)}})
	w.mustFetch(t, "kept-profile", cfg)
}
