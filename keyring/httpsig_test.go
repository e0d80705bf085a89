package keyring_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/httpsigverify"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// Every key type's HTTP message signature verifies with the independent
// verifier, over @method, @target-uri, the named headers and
// content-digest, with created and keyid.
func TestHTTPMessageSignatureVerifiedIndependently(t *testing.T) {
	body := []byte(`{"instructedAmount":{"currency":"EUR","amount":"123.50"}}`)
	now := time.Unix(1764417600, 0)
	for _, typ := range keyring.Types {
		k := testKey(t, typ)
		target := "https://api.bank.example/v1/payments/sepa-credit-transfers?x=1"
		hs, err := k.SignHTTPMessage(keyring.HTTPMessage{Method: "POST", TargetURI: target,
			Headers: map[string]string{"X-Request-ID": "99391c7e-ad88-49ec-a2ad-99ddcb1f7721", "Date": "Sun, 29 Nov 2026 12:00:00 GMT"},
			Body:    body}, now)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !strings.HasPrefix(hs.SignatureInput, "sig1=") || !strings.HasPrefix(hs.Signature, "sig1=:") {
			t.Errorf("%s: label: %s / %s", typ, hs.SignatureInput, hs.Signature)
		}
		req, _ := http.NewRequest("POST", target, bytes.NewReader(body))
		req.Header.Set("X-Request-ID", "99391c7e-ad88-49ec-a2ad-99ddcb1f7721")
		req.Header.Set("Date", "Sun, 29 Nov 2026 12:00:00 GMT")
		req.Header.Set("Content-Digest", hs.ContentDigest)
		req.Header.Set("Signature-Input", hs.SignatureInput)
		req.Header.Set("Signature", hs.Signature)
		params, err := httpsigverify.Verify(req, body, "sig1", publicOf(t, k.Latest()))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		want := `[@method @target-uri date x-request-id content-digest]`
		if fmt.Sprint(params["covered"]) != want || params["keyid"] != k.Latest().KID || params["created"] != now.Unix() {
			t.Errorf("%s: params %v", typ, params)
		}
		req.Method = "PUT"
		if _, err := httpsigverify.Verify(req, body, "sig1", publicOf(t, k.Latest())); err == nil {
			t.Errorf("%s: verifies with another method", typ)
		}
		req.Method = "POST"
		if _, err := httpsigverify.Verify(req, append(body, '!'), "sig1", publicOf(t, k.Latest())); err == nil {
			t.Errorf("%s: content-digest matches another body", typ)
		}
	}
}

func TestContentDigestOfEmptyBody(t *testing.T) {
	// RFC 9530's sha-256 of the empty body.
	if got := keyring.ContentDigest(nil); got != "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:" {
		t.Errorf("got %s", got)
	}
}

func TestHTTPMessageSignatureRefusesBadInput(t *testing.T) {
	k := testKey(t, keyring.TypeECP256)
	ok := keyring.HTTPMessage{Method: "POST", TargetURI: "https://bank.example/p"}
	for field, m := range map[string]keyring.HTTPMessage{
		"method":     {Method: "post", TargetURI: ok.TargetURI},
		"target_uri": {Method: "POST", TargetURI: "/relative"},
		"headers":    {Method: "POST", TargetURI: ok.TargetURI, Headers: map[string]string{"Content-Digest": "x"}},
	} {
		_, err := k.SignHTTPMessage(m, t0)
		var fe *keyring.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
	bad := map[string]string{"Bad Name": "x"}
	if _, err := k.SignHTTPMessage(keyring.HTTPMessage{Method: "POST", TargetURI: ok.TargetURI, Headers: bad}, t0); err == nil {
		t.Error("a header name with a space was accepted")
	}
	crlf := map[string]string{"x-a": "1\r\nx-b: 2"}
	if _, err := k.SignHTTPMessage(keyring.HTTPMessage{Method: "POST", TargetURI: ok.TargetURI, Headers: crlf}, t0); err == nil {
		t.Error("a header value with a line break was accepted")
	}
}
