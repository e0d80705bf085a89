package httpsigverify_test

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/httpsigverify"
)

// The test's verifier accepts RFC 9421 appendix B.2.6's signature (Ed25519,
// the one deterministic example) with the RFC's key from appendix B.1.4,
// and refuses it once the message changes: the verifier builds signature
// bases as the RFC does.
func TestVerifierAgainstRFC9421Example(t *testing.T) {
	block, _ := pem.Decode([]byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n"))
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"hello": "world"}`
	req, _ := http.NewRequest("POST", "https://example.com/foo?param=Value&Pet=dog", strings.NewReader(body))
	req.Host = "example.com"
	req.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", "18")
	req.Header.Set("Signature-Input", `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	req.Header.Set("Signature", "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:")
	params, err := httpsigverify.Verify(req, nil, "sig-b26", pub)
	if err != nil {
		t.Fatalf("the RFC's own example does not verify: %v", err)
	}
	if params["keyid"] != "test-key-ed25519" || params["created"] != int64(1618884473) {
		t.Errorf("params %v", params)
	}
	req.Header.Set("Content-Type", "text/plain")
	if _, err := httpsigverify.Verify(req, nil, "sig-b26", pub); err == nil {
		t.Error("a changed header still verifies")
	}
}
