package keyring_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// verifyHTTPSignature is a verifier of RFC 9421 written apart from the
// signer: github.com/dunglas/httpsfv parses the Signature-Input, Signature
// and Content-Digest structured fields and re-serializes the parameters;
// the signature base is rebuilt from the *http.Request as RFC 9421
// section 2.5 says; crypto/rsa, crypto/ecdsa or crypto/ed25519 check it.
// It is itself checked against RFC 9421's example in TestVerifierAgainstRFC9421Example.
func verifyHTTPSignature(req *http.Request, body []byte, label string, pub crypto.PublicKey) (map[string]any, error) {
	inputs, err := httpsfv.UnmarshalDictionary(req.Header.Values("Signature-Input"))
	if err != nil {
		return nil, fmt.Errorf("Signature-Input: %v", err)
	}
	m, ok := inputs.Get(label)
	if !ok {
		return nil, fmt.Errorf("no signature %s", label)
	}
	il, ok := m.(httpsfv.InnerList)
	if !ok {
		return nil, errors.New("Signature-Input member is not an inner list")
	}
	var base strings.Builder
	var covered []string
	for _, it := range il.Items {
		name, _ := it.Value.(string)
		covered = append(covered, name)
		var val string
		switch name {
		case "@method":
			val = req.Method
		case "@target-uri":
			val = req.URL.String()
		case "@path":
			val = req.URL.EscapedPath()
		case "@authority":
			val = strings.ToLower(req.Host)
		default:
			if strings.HasPrefix(name, "@") {
				return nil, fmt.Errorf("component %s not supported here", name)
			}
			vals := req.Header.Values(name)
			if len(vals) == 0 {
				return nil, fmt.Errorf("covered header %s is missing", name)
			}
			val = strings.TrimSpace(strings.Join(vals, ", "))
		}
		fmt.Fprintf(&base, "%q: %s\n", name, val)
	}
	one := httpsfv.NewDictionary()
	one.Add(label, il)
	params, err := httpsfv.Marshal(one)
	if err != nil {
		return nil, err
	}
	base.WriteString(`"@signature-params": ` + strings.TrimPrefix(params, label+"="))

	sigs, err := httpsfv.UnmarshalDictionary(req.Header.Values("Signature"))
	if err != nil {
		return nil, fmt.Errorf("Signature: %v", err)
	}
	sm, _ := sigs.Get(label)
	item, _ := sm.(httpsfv.Item)
	sig, ok := item.Value.([]byte)
	if !ok {
		return nil, errors.New("Signature member is not a byte sequence")
	}
	input := []byte(base.String())
	switch p := pub.(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(p, input, sig)
	case *rsa.PublicKey:
		h := crypto.SHA512.New()
		h.Write(input)
		ok = rsa.VerifyPSS(p, crypto.SHA512, h.Sum(nil), sig, &rsa.PSSOptions{SaltLength: 64}) == nil
	case *ecdsa.PublicKey:
		hash := crypto.SHA256
		if p.Curve.Params().BitSize == 384 {
			hash = crypto.SHA384
		}
		h := hash.New()
		h.Write(input)
		n := len(sig) / 2
		ok = ecdsa.Verify(p, h.Sum(nil), new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
	}
	if !ok {
		return nil, fmt.Errorf("signature does not verify over\n%s", input)
	}
	if body != nil {
		if err := checkContentDigest(req.Header.Values("Content-Digest"), body); err != nil {
			return nil, err
		}
	}
	out := map[string]any{"covered": covered}
	for _, n := range il.Params.Names() {
		out[n], _ = il.Params.Get(n)
	}
	return out, nil
}

func checkContentDigest(field []string, body []byte) error {
	d, err := httpsfv.UnmarshalDictionary(field)
	if err != nil {
		return fmt.Errorf("Content-Digest: %v", err)
	}
	m, ok := d.Get("sha-256")
	if !ok {
		return errors.New("Content-Digest has no sha-256")
	}
	got, _ := m.(httpsfv.Item).Value.([]byte)
	want := sha256.Sum256(body)
	if !bytes.Equal(got, want[:]) {
		return errors.New("Content-Digest does not match the body")
	}
	return nil
}

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
	params, err := verifyHTTPSignature(req, nil, "sig-b26", pub)
	if err != nil {
		t.Fatalf("the RFC's own example does not verify: %v", err)
	}
	if params["keyid"] != "test-key-ed25519" || params["created"] != int64(1618884473) {
		t.Errorf("params %v", params)
	}
	req.Header.Set("Content-Type", "text/plain")
	if _, err := verifyHTTPSignature(req, nil, "sig-b26", pub); err == nil {
		t.Error("a changed header still verifies")
	}
}

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
		params, err := verifyHTTPSignature(req, body, "sig1", publicOf(t, k.Latest()))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		want := `[@method @target-uri date x-request-id content-digest]`
		if fmt.Sprint(params["covered"]) != want || params["keyid"] != k.Latest().KID || params["created"] != now.Unix() {
			t.Errorf("%s: params %v", typ, params)
		}
		req.Method = "PUT"
		if _, err := verifyHTTPSignature(req, body, "sig1", publicOf(t, k.Latest())); err == nil {
			t.Errorf("%s: verifies with another method", typ)
		}
		req.Method = "POST"
		if _, err := verifyHTTPSignature(req, append(body, '!'), "sig1", publicOf(t, k.Latest())); err == nil {
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
