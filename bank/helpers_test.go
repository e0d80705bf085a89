package bank_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strconv"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

func b64(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func rsaToPKCS1(t *testing.T, k crypto.Signer) string {
	t.Helper()
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("not an RSA key: %T", k)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
}

// loopback lets a test's client talk to its httptest bank on 127.0.0.1,
// which the production egress policy refuses.
var loopback = bank.WithEgress(mustEgress(bank.EgressPolicy{AllowLoopback: true}))

func mustEgress(p bank.EgressPolicy) *bank.Egress {
	e, err := bank.NewEgressVia(p, nil)
	if err != nil {
		panic(err)
	}
	return e
}
