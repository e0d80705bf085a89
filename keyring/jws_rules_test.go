package keyring_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// mustRefuse signs and wants a *FieldError naming field. When the key
// signs instead, it reports whether go-jose takes the result, re-attached
// as a compact JWS, for a JWT: the attack issue 18 found.
func mustRefuse(t *testing.T, k *keyring.Key, payload []byte, o keyring.JWSOptions, field string) {
	t.Helper()
	sig, _, _, err := k.SignDetachedJWS(payload, o)
	var fe *keyring.FieldError
	if errors.As(err, &fe) {
		if fe.Field != field {
			t.Errorf("%q %+v: error names %s, want %s", payload, o, fe.Field, field)
		}
		return
	}
	if err != nil {
		t.Fatalf("%q %+v: %v", payload, o, err)
	}
	t.Errorf("%q %+v: signed; %s", payload, o, asJWT(t, k, sig, payload))
}

// asJWT re-attaches payload to a detached JWS (base64url, as the compact
// form carries it) and says whether go-jose verifies it as a JWT.
func asJWT(t *testing.T, k *keyring.Key, detached string, payload []byte) string {
	t.Helper()
	p := strings.SplitN(detached, ".", 3)
	tok := p[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + p[2]
	parsed, err := jwt.ParseSigned(tok, allAlgs)
	if err != nil {
		return "go-jose does not parse it as a JWT: " + err.Error()
	}
	var c map[string]any
	if err := parsed.Claims(publicOf(t, k.Latest()), &c); err != nil {
		return "go-jose does not verify it as a JWT: " + err.Error()
	}
	return "go-jose verifies it as a JWT with claims " + strings.TrimSpace(string(mustJSON(c)))
}

var assertion = `{"iss":"tpp-1","sub":"tpp-1","aud":"https://as.bank.example/token","exp":4102444800,"jti":"x1"}`

// A request signature is never a JWT or a DPoP proof: the header cannot
// say so (typ, cty), carry a key (jwk, jku, x5u, x5c) or registered names
// in a case a lenient parser folds.
func TestDetachedJWSRefusesTokenHeaders(t *testing.T) {
	k := testKey(t, keyring.TypeECP256)
	body := []byte(`{"Data":{"ConsentId":"c1"}}`)
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}
	for _, h := range []map[string]any{
		{"typ": "JWT"}, {"typ": "jwt"}, {"typ": "application/jwt"}, {"typ": "dpop+jwt"}, {"typ": "at+jwt"},
		{"typ": "application/at+jwt"}, {"typ": "secevent+jwt"}, {"typ": "logout+jwt"},
		{"typ": "oauth-authz-req+jwt"}, {"typ": "client-authentication+jwt"}, {"typ": "vc+JWT"},
		{"typ": "example+jwt "}, {"typ": "JOSE+JSON"}, {"typ": "JWS"}, {"typ": ""}, {"typ": 1}, {"typ": nil},
		{"cty": "JWT"}, {"cty": "application/jwt"}, {"cty": 7},
		{"jwk": jwk}, {"typ": "JOSE", "jwk": jwk}, {"jku": "https://a.example/jwks"}, {"x5u": "https://a.example/c"},
		{"x5c": []any{"MIIB"}}, {"zip": "DEF"},
		{"TYP": "JWT"}, {"Typ": "JOSE"}, {"JWK": jwk}, {"Alg": "none"}, {"KID": "x"}, {"Crit": []any{"b64"}},
	} {
		mustRefuse(t, k, body, keyring.JWSOptions{Header: h}, "header")
		mustRefuse(t, k, body, keyring.JWSOptions{Header: h, B64: true}, "header")
	}
	for _, typ := range []string{"JOSE", "jose", "application/jose", "Application/JOSE"} {
		if _, _, _, err := k.SignDetachedJWS(body, keyring.JWSOptions{Header: map[string]any{"typ": typ, "cty": "application/json"}}); err != nil {
			t.Errorf("typ %s: %v", typ, err)
		}
	}
	if _, _, _, err := k.SignDetachedJWS(body, keyring.JWSOptions{Header: map[string]any{"x5t#S256": "abc"}}); err != nil {
		t.Errorf("x5t#S256: %v", err)
	}
}

// crit lists only extensions (RFC 7515 4.1.11): never a name RFC 7515 or
// RFC 7518 registers, whatever its case.
func TestDetachedJWSRefusesRegisteredCritNames(t *testing.T) {
	k := testKey(t, keyring.TypeRSA2048)
	body := []byte(`{"Data":{}}`)
	hdr := map[string]any{"typ": "JOSE", "cty": "application/json", "x5t": "abc", "x5t#S256": "abc"}
	for _, c := range []string{"typ", "cty", "x5t", "x5t#S256", "alg", "kid", "crit", "jwk", "jku", "x5u", "x5c",
		"enc", "zip", "Cty", ""} {
		mustRefuse(t, k, body, keyring.JWSOptions{Header: hdr, Crit: []string{c}}, "crit")
	}
	iat := "http://openbanking.org.uk/iat"
	if _, _, _, err := k.SignDetachedJWS(body, keyring.JWSOptions{Header: map[string]any{iat: 1, "typ": "JOSE"},
		Crit: []string{"b64", iat}}); err != nil {
		t.Errorf("UK OB crit: %v", err)
	}
	_, _, _, err := k.SignDetachedJWS(body, keyring.JWSOptions{Crit: []string{"secret-name"}})
	if err == nil || strings.Contains(err.Error(), "secret-name") {
		t.Errorf("a crit name not in header: %v", err)
	}
}

// A payload that is a JWT's or a DPoP proof's claims set is refused with
// b64 true and false, in every form a lenient JWT library reads: escaped
// or case-folded names, BOM, UTF-16/32, a JSON string holding the object,
// invalid JSON, and, since b64=false signs the bytes as they are,
// base64url text of the claims.
func TestDetachedJWSRefusesTokenPayloads(t *testing.T) {
	k := testKey(t, keyring.TypeRSA2048)
	dpop := `{"jti":"j","htm":"POST","htu":"https://rs.bank.example/payments","iat":1764417600,"ath":"x"}`
	b64url := base64.RawURLEncoding.EncodeToString([]byte(assertion))
	for _, p := range []string{
		assertion, dpop, `{"iss":"a"}`, `{"sub":1}`, `{"aud":[]}`, `{"exp":1}`, `{"nbf":1}`, `{"iat":1}`,
		`{"jti":"1"}`, `{"htm":"GET"}`, `{"htu":"h"}`, `{"ath":"a"}`, `{"client_id":"c"}`, `{"response_type":"code"}`,
		` {"Data":{}, "ISS":"a"}`, `{"\u0069ss":"a"}`, `{"iſſ":"a"}`, `{"iss":"a","iss":"b"}`, "\ufeff" + assertion,
		"\n\t" + assertion + "\n", assertion + " trailing", `"{\"iss\":\"a\",\"exp\":9}"`,
		`{"iss":"a","x":NaN}`, `{iss:"a"}`, `{'iss':'a',}`, `{"Data":{}, "aud":"x",}`,
		string(utf16le("\ufeff" + assertion)), string(utf16be(assertion)), string(utf32le(assertion)),
	} {
		for _, b := range []bool{true, false} {
			mustRefuse(t, k, []byte(p), keyring.JWSOptions{B64: b}, "payload")
		}
	}
	// b64=false only: the detached bytes are base64url text of claims. A
	// library that base64-decodes the compact payload either ignores b64
	// or, like go-jose, decodes then signs the bytes raw: both read claims.
	for _, p := range []string{b64url, base64.URLEncoding.EncodeToString([]byte(assertion)),
		base64.StdEncoding.EncodeToString([]byte(`{"htm":"GET","htu":"https://rs/x"}`)), " " + b64url + "\n"} {
		mustRefuse(t, k, []byte(p), keyring.JWSOptions{}, "payload")
	}
	for _, p := range []string{`{"Data":{"iss":"a","exp":1}}`, `[{"iss":"a"}]`, `x`, ``, `{}`, `"iss"`, b64url,
		`{"Data":{"Initiation":{"InstructedAmount":{"Amount":"10.00","Currency":"GBP"}}},"Risk":{}}`,
		`{"issuer":"a","expiry":"b","audience":"c"}`} {
		if _, _, _, err := k.SignDetachedJWS([]byte(p), keyring.JWSOptions{B64: true}); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
}

// The attack in issue 18 on b64=false, the default: the UK OB signature
// of a body that is a claims set, re-attached, is a JWT go-jose verifies.
// It must be refused, with an error that does not quote the payload.
func TestDetachedJWSUnencodedIsNotAToken(t *testing.T) {
	k := testKey(t, keyring.TypeECP256)
	mustRefuse(t, k, []byte(assertion), keyring.JWSOptions{Header: map[string]any{"typ": "JOSE"}}, "payload")
	_, _, _, err := k.SignDetachedJWS([]byte(assertion), keyring.JWSOptions{})
	if err == nil || strings.Contains(err.Error(), "tpp-1") {
		t.Errorf("error %v", err)
	}
}

// A legitimate UK OB signature still verifies with go-jose, and the same
// bytes re-attached carry no claim a token verifier needs.
func TestDetachedJWSStillSignsRequests(t *testing.T) {
	k := testKey(t, keyring.TypeRSA2048)
	body := []byte(`{"Data":{"Initiation":{"InstructedAmount":{"Amount":"10.00","Currency":"GBP"}}},"Risk":{}}`)
	for _, b := range []bool{false, true} {
		sig, _, _, err := k.SignDetachedJWS(body, keyring.JWSOptions{B64: b, Header: map[string]any{"typ": "JOSE", "cty": "application/json"}})
		if err != nil {
			t.Fatal(err)
		}
		obj, err := jose.ParseDetached(sig, body, allAlgs)
		if err != nil || obj.DetachedVerify(body, publicOf(t, k.Latest())) != nil {
			t.Errorf("b64=%v: go-jose: %v", b, err)
		}
	}
}

func utf16le(s string) []byte {
	var out []byte
	for _, u := range utf16.Encode([]rune(s)) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}

func utf16be(s string) []byte {
	var out []byte
	for _, u := range utf16.Encode([]rune(s)) {
		out = binary.BigEndian.AppendUint16(out, u)
	}
	return out
}

func utf32le(s string) []byte {
	var out []byte
	for _, r := range s {
		out = binary.LittleEndian.AppendUint32(out, uint32(r))
	}
	return out
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// Whatever payload SignDetachedJWS signs, go-jose never verifies it,
// re-attached, as a JWT with a token claim; with b64=false neither is a
// payload that is base64url text of claims (a library ignoring b64 reads
// it so). Run: go test -fuzz FuzzDetachedJWSIsNotAToken ./keyring/
func FuzzDetachedJWSIsNotAToken(f *testing.F) {
	for _, s := range []string{assertion, `{"Data":{}}`, `{"\u0069ss":1}`, `{"iſſ":1}`, `"{\"exp\":1}"`, `[1]`, `x`} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	k, err := keyring.Generate(keyring.TypeECP256, nil, t0)
	if err != nil {
		f.Fatal(err)
	}
	claims := []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "htm", "htu", "ath"}
	f.Fuzz(func(t *testing.T, payload []byte, b64 bool) {
		sig, _, _, err := k.SignDetachedJWS(payload, keyring.JWSOptions{B64: b64})
		if err != nil {
			return
		}
		p := strings.SplitN(sig, ".", 3)
		for _, middle := range []string{base64.RawURLEncoding.EncodeToString(payload), string(payload)} {
			tok, err := jwt.ParseSigned(p[0]+"."+middle+"."+p[2], []jose.SignatureAlgorithm{jose.ES256})
			var c map[string]any
			if err != nil || tok.Claims(publicOf(t, k.Latest()), &c) != nil {
				continue
			}
			for name := range c {
				for _, cl := range claims {
					if strings.EqualFold(name, cl) {
						t.Fatalf("b64=%v %q: go-jose verifies a JWT with claim %s", b64, payload, name)
					}
				}
			}
		}
		if raw, err := base64.RawURLEncoding.DecodeString(string(payload)); err == nil && !b64 {
			var c map[string]any
			if json.Unmarshal(raw, &c) == nil {
				for name := range c {
					for _, cl := range claims {
						if strings.EqualFold(name, cl) {
							t.Fatalf("b64=false %q: base64url of a claims set signed", payload)
						}
					}
				}
			}
		}
	})
}
