// Package httpsigverify verifies RFC 9421 HTTP message signatures for
// bankauth's tests, independently of the keyring package that makes them:
// github.com/dunglas/httpsfv parses the structured fields. Only tests import
// it; the plugin binary must not link it (internal/interop checks).
package httpsigverify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"

	"github.com/dunglas/httpsfv"
)

// Verify checks an RFC 9421 signature on req, written apart from the
// plugin's signer: github.com/dunglas/httpsfv parses the Signature-Input, Signature
// and Content-Digest structured fields and re-serializes the parameters;
// the signature base is rebuilt from the *http.Request as RFC 9421
// section 2.5 says; crypto/rsa, crypto/ecdsa or crypto/ed25519 check it.
// It is itself checked against RFC 9421's example B.2.6 (verify_test.go).
// label picks the signature; body, when not nil, must match the sha-256
// Content-Digest. It returns the covered components ("covered") and the
// signature parameters by name.
func Verify(req *http.Request, body []byte, label string, pub crypto.PublicKey) (map[string]any, error) {
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
		if err := CheckContentDigest(req.Header.Values("Content-Digest"), body); err != nil {
			return nil, err
		}
	}
	out := map[string]any{"covered": covered}
	for _, n := range il.Params.Names() {
		out[n], _ = il.Params.Get(n)
	}
	return out, nil
}

// CheckContentDigest checks an RFC 9530 Content-Digest field against body.
func CheckContentDigest(field []string, body []byte) error {
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
