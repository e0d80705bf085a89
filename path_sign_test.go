package bankauth

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/httpsigverify"
)

// publicKeyOf reads key/<name>'s public_key PEM and parses it.
func publicKeyOf(t *testing.T, e *testEnv, name string) any {
	t.Helper()
	block, _ := pem.Decode([]byte(e.mustOK(t, logical.ReadOperation, "key/"+name, nil).Data["public_key"].(string)))
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// Detached JWS from sign/<key>, verified by go-jose against the key's
// published public key and the payload sent apart.
func TestSignJWSDetached(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/ob", map[string]any{"type": "rsa-2048", "purpose": "request_signing"})
	e.mustOK(t, logical.CreateOperation, "key/ec", map[string]any{"type": "ec-p384", "purpose": "request_signing"})
	payload := []byte(`{"Data":{"ConsentId":"PDC_123"}}`)
	for _, c := range []struct {
		key  string
		data map[string]any
		alg  string
		b64  bool
	}{
		{"ob", map[string]any{}, "PS256", false},
		{"ob", map[string]any{"b64": true, "alg": "RS256"}, "RS256", true},
		// header as a JSON string (CLI) and as an object (API JSON body)
		{"ob", map[string]any{"header": `{"typ":"JOSE","cty":"application/json"}`}, "PS256", false},
		{"ob", map[string]any{"header": map[string]any{"typ": "JOSE"}}, "PS256", false},
		{"ec", map[string]any{}, "ES384", false},
	} {
		data := map[string]any{"format": "jws_detached", "payload": base64.StdEncoding.EncodeToString(payload)}
		for k, v := range c.data {
			data[k] = v
		}
		got := e.mustOK(t, logical.UpdateOperation, "sign/"+c.key, data).Data
		assertNoPrivate(t, e, c.key, got)
		sig := got["signature"].(string)
		obj, err := jose.ParseDetached(sig, payload, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(c.alg)})
		if err != nil {
			t.Fatalf("%v: go-jose parse %s: %v", c.data, sig, err)
		}
		pub := publicKeyOf(t, e, c.key)
		if err := obj.DetachedVerify(payload, pub); err != nil {
			t.Errorf("%v: go-jose does not verify: %v", c.data, err)
		}
		h := obj.Signatures[0].Protected
		if got["alg"] != c.alg || got["kid"] != h.KeyID || h.Algorithm != c.alg {
			t.Errorf("%v: answer %v header %+v", c.data, got, h)
		}
		if _, isObj := c.data["header"]; isObj && h.ExtraHeaders["typ"] != "JOSE" {
			t.Errorf("%v: typ missing: %v", c.data, h.ExtraHeaders)
		}
		if b64, set := h.ExtraHeaders["b64"]; c.b64 == (set && b64 == false) {
			t.Errorf("%v: b64 header %v", c.data, h.ExtraHeaders)
		}
	}
}

// The UK OB header members with crit: go-jose refuses crit names it does
// not know, so the RFC 7797 signing input is rebuilt and checked with
// go-jose's JSONWebKey key through crypto/rsa.
func TestSignJWSWithCritMembers(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/ob", map[string]any{"type": "rsa-2048", "purpose": "request_signing"})
	payload := []byte(`{"Data":{}}`)
	got := e.mustOK(t, logical.UpdateOperation, "sign/ob", map[string]any{"format": "jws_detached",
		"payload": base64.StdEncoding.EncodeToString(payload),
		"header":  `{"http://openbanking.org.uk/iat":1732870000,"http://openbanking.org.uk/iss":"0015800001041RHAAY","http://openbanking.org.uk/tan":"openbanking.org.uk","typ":"JOSE"}`,
		"crit":    "http://openbanking.org.uk/iat,http://openbanking.org.uk/iss,http://openbanking.org.uk/tan"}).Data
	parts := strings.Split(got["signature"].(string), ".")
	hdrJSON, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr map[string]any
	dec := json.NewDecoder(bytes.NewReader(hdrJSON))
	dec.UseNumber()
	if err := dec.Decode(&hdr); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(hdr["crit"]) != "[b64 http://openbanking.org.uk/iat http://openbanking.org.uk/iss http://openbanking.org.uk/tan]" ||
		hdr["http://openbanking.org.uk/iat"] != json.Number("1732870000") || hdr["b64"] != false {
		t.Errorf("header %s", hdrJSON)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !verifyJWSInput(publicKeyOf(t, e, "ob"), "PS256", append([]byte(parts[0]+"."), payload...), sig) {
		t.Error("the RFC 7797 signing input does not verify")
	}
}

func TestSignRefusesBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/ob", map[string]any{"type": "ec-p256", "purpose": "request_signing"})
	p := base64.StdEncoding.EncodeToString([]byte("x"))
	for want, data := range map[string]map[string]any{
		"invalid format":     {"payload": p},
		"invalid payload":    {"format": "jws_detached"},
		"invalid payload: ":  {"format": "jws_detached", "payload": "%%%"},
		"invalid alg":        {"format": "jws_detached", "payload": p, "alg": "PS256"},
		"invalid header":     {"format": "jws_detached", "payload": p, "header": `{"alg":"none"}`},
		"invalid header: m":  {"format": "jws_detached", "payload": p, "header": `[1]`},
		"invalid crit":       {"format": "jws_detached", "payload": p, "crit": "x"},
		"invalid method":     {"format": "http_message_signature", "target_uri": "https://a.example/"},
		"invalid target_uri": {"format": "http_message_signature", "method": "POST", "target_uri": "a/b"},
		"invalid headers":    {"format": "http_message_signature", "method": "POST", "target_uri": "https://a.example/", "headers": `{"x-a":1}`},
		"invalid body":       {"format": "http_message_signature", "method": "POST", "target_uri": "https://a.example/", "body": "%%"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "sign/ob", data)
		if msg := errorText(resp, err); err != nil || !strings.HasPrefix(msg, want) {
			t.Errorf("%v: got %q, want %q...", data, msg, want)
		}
	}
	resp, err := e.request(t, logical.UpdateOperation, "sign/none", map[string]any{"format": "jws_detached", "payload": p})
	if msg := errorText(resp, err); !strings.HasPrefix(msg, "invalid name") {
		t.Errorf("missing key: %q", msg)
	}
}

// An RFC 9421 signature from sign/<key>, verified by the independent
// verifier (httpsfv parsing) on the request as it would be sent.
func TestSignHTTPMessage(t *testing.T) {
	e := newTestEnv(t)
	now := time.Unix(1764417600, 0)
	e.b.keys.now = func() time.Time { return now }
	for _, typ := range []string{"rsa-2048", "ec-p256"} {
		e.mustOK(t, logical.CreateOperation, "key/"+typ, map[string]any{"type": typ, "purpose": "request_signing"})
		body := []byte(`{"instructedAmount":{"currency":"EUR","amount":"123.50"}}`)
		target := "https://api.bank.example/v1/payments/sepa-credit-transfers"
		got := e.mustOK(t, logical.UpdateOperation, "sign/"+typ, map[string]any{"format": "http_message_signature",
			"method": "POST", "target_uri": target, "headers": map[string]any{"X-Request-ID": "99391c7e", "PSU-ID": "PSU-1234"},
			"body": base64.StdEncoding.EncodeToString(body)}).Data
		assertNoPrivate(t, e, typ, got)
		req, _ := http.NewRequest("POST", target, bytes.NewReader(body))
		req.Header.Set("X-Request-ID", "99391c7e")
		req.Header.Set("PSU-ID", "PSU-1234")
		req.Header.Set("Content-Digest", got["content_digest"].(string))
		req.Header.Set("Signature-Input", got["signature_input"].(string))
		req.Header.Set("Signature", got["signature"].(string))
		params, err := httpsigverify.Verify(req, body, "sig1", publicKeyOf(t, e, typ))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		kid := e.mustOK(t, logical.ReadOperation, "key/"+typ, nil).Data["kid"]
		if fmt.Sprint(params["covered"]) != "[@method @target-uri psu-id x-request-id content-digest]" ||
			params["keyid"] != kid || params["created"] != now.Unix() || got["kid"] != kid {
			t.Errorf("%s: params %v answer %v", typ, params, got)
		}
	}
}
