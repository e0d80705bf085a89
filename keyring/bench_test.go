package keyring_test

import (
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// BenchmarkSign measures one sign/ request's keyring work per key type:
// parsing the stored PKCS #8 version and signing (detached JWS, RFC 9421,
// DPoP proof). Run: go test -run '^$' -bench Sign -benchtime 200x ./keyring/
func BenchmarkSign(b *testing.B) {
	payload := []byte(`{"Data":{"Initiation":{"InstructedAmount":{"Amount":"165.88","Currency":"GBP"}}}}`)
	for _, typ := range []string{keyring.TypeRSA2048, keyring.TypeECP256, keyring.TypeECP384} {
		k, err := keyring.Generate(typ, nil, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(typ+"/jws_detached", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, _, _, err := k.SignDetachedJWS(payload, keyring.JWSOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(typ+"/http_message_signature", func(b *testing.B) {
			m := keyring.HTTPMessage{Method: "POST", TargetURI: "https://api.bank.example/v1/payments",
				Headers: map[string]string{"x-request-id": "1"}, Body: payload}
			for i := 0; i < b.N; i++ {
				if _, err := k.SignHTTPMessage(m, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(typ+"/dpop", func(b *testing.B) {
			r := keyring.DPoPRequest{Method: "GET", URL: "https://rs.bank.example/accounts", AccessToken: "t"}
			for i := 0; i < b.N; i++ {
				if _, err := k.DPoPProof(r, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
