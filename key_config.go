package bankauth

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/logical"
)

// keySigner lets package bank use a stored key (a snapshot read with the
// config) without seeing its private bytes as text.
type keySigner struct {
	name string
	k    *keyring.Key
}

// Use is the key's purposes and pins, for bank to check.
func (s keySigner) Use() bank.KeyUse {
	return bank.KeyUse{Name: s.name, Purposes: s.k.Purposes,
		AllowedEndpoints: s.k.AllowedEndpoints, AllowedAudiences: s.k.AllowedAudiences}
}

func (s keySigner) KID() string { return s.k.Latest().KID }

func (s keySigner) SignJWT(typ string, claims any) (string, error) { return s.k.SignJWT(typ, claims) }

func (s keySigner) DPoPProof(htm, htu, nonce, accessToken string, now time.Time) (string, error) {
	return s.k.DPoPProof(keyring.DPoPRequest{Method: htm, URL: htu, Nonce: nonce, AccessToken: accessToken}, now)
}

func (s keySigner) TLSCertificate() (*tls.Certificate, error) { return s.k.TLSCertificate() }

// resolveConfigKeys reads the keys a config's signing_key, tls_key and
// dpop_key name and hands them to the config. A key that does not exist is
// left out, for Validate to report naming the field; only a storage
// failure is an error.
func resolveConfigKeys(ctx context.Context, s logical.Storage, cfg *bank.Config) error {
	var keys bank.Keys
	for _, f := range []struct {
		field string
		dst   *bank.KeySigner
	}{{bank.FieldSigningKey, &keys.Signing}, {bank.FieldTLSKey, &keys.TLS}, {bank.FieldDPoPKey, &keys.DPoP}} {
		name := cfg.Settings[f.field]
		if name == "" {
			continue
		}
		k, err := readKey(ctx, s, name)
		if err != nil {
			return err
		}
		if k != nil {
			*f.dst = keySigner{name, k}
		}
	}
	cfg.UseKeys(keys)
	return nil
}

// readKeyFields adds the key fields a config sets to its read.
func readKeyFields(cfg *bank.Config, data map[string]any) {
	for _, f := range keyFields {
		if v := cfg.Settings[f]; v != "" {
			data[f] = v
		}
	}
}

// forgetKeyUsers drops the loaded clients (and in-memory tokens) of the
// configs that use a key which changed, so the next read signs with the
// new version or presents the new certificate.
func (b *backend) forgetKeyUsers(ctx context.Context, s logical.Storage, key string) error {
	users, err := b.configsUsingKey(ctx, s, key)
	if err != nil {
		return err
	}
	for _, u := range users {
		b.broker.Forget(u)
	}
	return nil
}

// keepTLSKey carries tls_key across a provider change, as tls_client_cert
// is: mutual TLS applies to every provider. (signing_key and dpop_key are
// oauth2's and profiles', and start afresh with the other provider fields.)
func keepTLSKey(dst, src *bank.Config) {
	if v := src.Settings[bank.FieldTLSKey]; v != "" && dst.Settings != nil {
		dst.Settings[bank.FieldTLSKey] = v
	}
}
