package keyring

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// registeredHeader are the header parameters RFC 7515 and RFC 7518 define,
// b64 (RFC 7797) and zip (RFC 7516).
var registeredHeader = []string{"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty",
	"crit", "b64", "enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c"}

// keyHeader are members that carry or point to a key or certificate (a
// DPoP proof carries jwk) or change the payload (zip): no sign/ format
// defines them.
var keyHeader = map[string]bool{"jwk": true, "jku": true, "x5u": true, "x5c": true, "zip": true}

// tokenClaims are top-level payload members that make a JWT mean
// something: RFC 7519's registered claims, DPoP's (RFC 9449) and an
// authorization request object's (RFC 9101).
var tokenClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "htm", "htu", "ath",
	"client_id", "response_type"}

// checkJWSRequest keeps a detached JWS made for a request from being a
// token (issue 18): with its payload re-attached it is a compact JWS, which
// a JWT library takes for a JWT when the key is in the client's JWK Set.
// Errors are *FieldError naming header, crit or payload and the rule,
// never a value the caller sent.
func checkJWSRequest(payload []byte, o JWSOptions) error {
	for _, name := range slices.Sorted(maps.Keys(o.Header)) { // one answer for one request
		if err := checkHeaderMember(name, o.Header[name]); err != nil {
			return err
		}
	}
	for _, c := range o.Crit {
		if c == "b64" {
			continue // the plugin's own; checked against B64 when signing
		}
		if c == "" || registered(c) != "" {
			return &FieldError{Field: "crit", Msg: "may name only extension header parameters, not ones RFC 7515 or 7518 registers such as typ or cty (RFC 7515 4.1.11)"}
		}
	}
	if carriesClaims(payload, 0) || !o.B64 && carriesClaims(lenientBase64(payload), 0) {
		return &FieldError{Field: "payload", Msg: "is a JWT or DPoP claims set (a JSON object with iss, sub, aud, exp, nbf, iat, jti, htm, htu, ath, client_id or response_type, in any case, as JSON or base64url of JSON): sign/ signs requests, not tokens"}
	}
	return nil
}

// registered returns the registered spelling of name, compared ignoring
// case, or "".
func registered(name string) string {
	for _, r := range registeredHeader {
		if strings.EqualFold(name, r) {
			return r
		}
	}
	return ""
}

func checkHeaderMember(name string, val any) error {
	lower := strings.ToLower(name)
	switch {
	case registered(name) != "" && registered(name) != name:
		return &FieldError{Field: "header", Msg: "member names may not differ only in case from a registered header parameter"}
	case keyHeader[lower]:
		return &FieldError{Field: "header", Msg: "may not carry jwk, jku, x5u, x5c or zip: no sign/ format defines them"}
	case lower == "typ":
		s, _ := val.(string)
		if strings.TrimPrefix(strings.ToLower(s), "application/") != "jose" {
			return &FieldError{Field: "header", Msg: "typ must be JOSE (or application/jose): sign/ makes request signatures, never JWTs or DPoP proofs"}
		}
	case lower == "cty":
		s, ok := val.(string)
		if !ok || strings.HasSuffix(strings.ToLower(strings.TrimSpace(s)), "jwt") {
			return &FieldError{Field: "header", Msg: "cty must be a media type string that is not a JWT"}
		}
	}
	return nil
}

// carriesClaims says whether p, read as leniently as a JWT library might
// (BOM, UTF-16/32, a JSON string holding JSON, invalid JSON), is an object
// with a tokenClaims member, compared by Unicode case folding (Go's JSON
// matches ſ to s and K to k).
func carriesClaims(p []byte, depth int) bool {
	for _, text := range jsonTexts(p) {
		text = bytes.TrimSpace(text)
		var v json.RawMessage
		if err := json.NewDecoder(bytes.NewReader(text)).Decode(&v); err != nil {
			if len(text) > 0 && text[0] == '{' && anyClaimKey(looseKeys(text)) {
				return true
			}
			continue
		}
		switch v[0] {
		case '{':
			var obj map[string]json.RawMessage
			if json.Unmarshal(v, &obj) != nil {
				continue
			}
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			if anyClaimKey(keys) {
				return true
			}
		case '"':
			var s string
			if depth < 2 && json.Unmarshal(v, &s) == nil && carriesClaims([]byte(s), depth+1) {
				return true
			}
		}
	}
	return false
}

func anyClaimKey(keys []string) bool {
	for _, k := range keys {
		for _, c := range tokenClaims {
			if strings.EqualFold(strings.TrimSpace(k), c) {
				return true
			}
		}
	}
	return false
}

// looseKey matches a member name in JSON that Go refuses but lenient
// parsers take: double- or single-quoted, or bare.
var looseKey = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"\s*:|'((?:[^'\\]|\\.)*)'\s*:|([A-Za-z_$][A-Za-z0-9_$]*)\s*:`)

func looseKeys(text []byte) []string {
	var keys []string
	for _, m := range looseKey.FindAllSubmatch(text, -1) {
		var k string
		switch {
		case m[1] != nil:
			if json.Unmarshal(append(append([]byte{'"'}, m[1]...), '"'), &k) != nil {
				k = string(m[1])
			}
		case m[2] != nil:
			k = strings.ReplaceAll(string(m[2]), `\'`, `'`)
		default:
			k = string(m[3])
		}
		keys = append(keys, k)
	}
	return keys
}

// jsonTexts returns p as UTF-8 without a BOM and, when it holds NUL bytes,
// also decoded as UTF-16 and UTF-32 of either byte order (RFC 4627 3,
// as Python's json does).
func jsonTexts(p []byte) [][]byte {
	out := [][]byte{bytes.TrimPrefix(p, []byte("\xef\xbb\xbf"))}
	if bytes.IndexByte(p, 0) < 0 {
		return out
	}
	for _, be := range []bool{false, true} {
		var order binary.ByteOrder = binary.LittleEndian
		if be {
			order = binary.BigEndian
		}
		u16 := make([]uint16, 0, len(p)/2)
		for i := 0; i+1 < len(p); i += 2 {
			u16 = append(u16, order.Uint16(p[i:]))
		}
		var r32 []rune
		for i := 0; i+3 < len(p); i += 4 {
			r32 = append(r32, rune(order.Uint32(p[i:])))
		}
		for _, rs := range [][]rune{utf16.Decode(u16), r32} {
			s := strings.TrimPrefix(string(rs), "\ufeff")
			if utf8.ValidString(s) {
				out = append(out, []byte(s))
			}
		}
	}
	return out
}

// lenientBase64 decodes p as a lax base64 decoder does (Node's Buffer
// among them): characters outside either alphabet and padding skipped,
// trailing bits ignored.
func lenientBase64(p []byte) []byte {
	clean := make([]byte, 0, len(p))
	for _, c := range p {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			clean = append(clean, c)
		case c == '+':
			clean = append(clean, '-')
		case c == '/':
			clean = append(clean, '_')
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	out, _ := base64.RawURLEncoding.DecodeString(string(clean))
	return out
}
