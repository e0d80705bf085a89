//go:build e2e

package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
)

// The hostile values the fuzzer sends, and the canaries that tell where a
// value ends up.

// Canaries are "zsecCANARY<n>x<hex>" (sent in sensitive fields only) and
// "znonCANARY<n>x<hex>" (other fields). canaryRE finds them, also cut short
// or case-folded.
var canaryRE = regexp.MustCompile(`(?i)z(sec|non)canary(\d*)(x[0-9a-f]*)?`)

// canaryInfo says where a canary was sent.
type canaryInfo struct {
	Req   int    // request number
	Op    string // operation label
	Field string
	Why   string // why the field counts as sensitive ("" when it does not)
}

// valueGen draws values from a seeded generator and records every canary.
type valueGen struct {
	r        *rand.Rand
	n        int
	req      int // number of the request being built
	op       string
	canaries map[string]canaryInfo // by "<n>"
	emuURL   string                // the bank emulator, a valid base_url
	tokenURL string                // the oauth2 stub's token endpoint
	keyPEM   string                // a valid PKCS #8 EC key
	profile  string                // a valid profile document (JSON)
	names    map[string][]string   // seeded names by family
}

func (g *valueGen) pick(n int) int { return g.r.IntN(n) }

func (g *valueGen) chance(p float64) bool { return g.r.Float64() < p }

func oneOf[T any](g *valueGen, xs ...T) T { return xs[g.pick(len(xs))] }

// canary returns a fresh canary for field, recorded as sent.
func (g *valueGen) canary(f fuzzField) string {
	g.n++
	prefix := "znonCANARY"
	if f.Sensitive != "" {
		prefix = "zsecCANARY"
	}
	c := fmt.Sprintf("%s%dx%06x", prefix, g.n, g.r.Uint32()&0xffffff)
	g.canaries[fmt.Sprint(g.n)] = canaryInfo{Req: g.req, Op: g.op, Field: f.Name, Why: f.Sensitive}
	return c
}

const mib = 1 << 20

// huge is a 1 MiB string with c at both ends (c may be "").
func huge(c string) string {
	return c + strings.Repeat("A", mib) + c
}

// hostileStrings are odd texts of no particular field.
var hostileStrings = []string{
	"", " ", "\x00", "a\x00b", "\x01\x02\x1b[31m\r\n\t", "\u202egnp.exe", "ünïcödé 名前", "😀🏦💸", "\u200b\ufeff",
	"NaN", "Infinity", "-0", "1e999", "0x10", "-1", "9223372036854775808", "true", "yes", "null",
	"file:///etc/passwd", "http://169.254.169.254/latest/meta-data/", "https://user:pass@127.0.0.1/",
	"http://[fe80::1]/", "http://0.0.0.0/", "http://224.0.0.1/", "gopher://127.0.0.1:1/", "https://127.0.0.1:1/#frag",
	`{"k":"v"}`, `[1,2,3]`, `{"steps":[]}`, "../../etc/passwd", "%00%2e%2e", "${env:HOME}", "{{.Secret}}", "<script>x</script>",
	"'; --", "a,b,,c", ",", "1h", "-5s", "99999999999h", "0s", "1.5", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQ\n-----END PRIVATE KEY-----\n", strings.Repeat("n", 300),
}

// hostile returns a hostile value of any JSON type, with c (a canary or "")
// somewhere inside when c is not "".
func (g *valueGen) hostile(c string) any {
	if c == "" {
		switch g.pick(12) {
		case 0:
			return oneOf[any](g, nil, true, false, 0, -1, 1e308, -1e308, 3.14, 9223372036854775807, -9223372036854775808)
		case 1:
			return oneOf[any](g, []any{}, map[string]any{}, []any{"a", "b"}, []any{1, 2}, map[string]any{"a": map[string]any{"b": []any{1, nil}}})
		case 2:
			if g.chance(0.15) {
				return huge("")
			}
		}
		return oneOf(g, hostileStrings...)
	}
	switch g.pick(16) {
	case 0:
		return []any{c}
	case 1:
		return map[string]any{"a": c}
	case 2:
		return map[string]any{"a": map[string]any{"b": []any{1, c, nil}}}
	case 3:
		return `{"x":"` + c + `"}`
	case 4:
		return "-----BEGIN PRIVATE KEY-----\n" + c + "MIIEvQIBADANBgkqhkiG9w0BAQ\n-----END PRIVATE KEY-----\n"
	case 5:
		return "https://user:" + c + "@127.0.0.1/"
	case 6:
		return c + "\x00\x01\r\n"
	case 7:
		return "\u202e" + c + " 😀"
	case 8:
		if g.chance(0.3) {
			return huge(c)
		}
		return c + strings.Repeat("B", 5000)
	case 9:
		return " \n" + c + "\n"
	case 10:
		return c + "," + c
	case 11:
		return "http://127.0.0.1:1/" + c + "?q=" + c
	}
	return c
}

// valid returns a value that passes for field f, or nil when it knows none.
func (g *valueGen) valid(f fuzzField) any {
	if len(f.Enum) > 0 {
		return f.Enum[g.pick(len(f.Enum))]
	}
	pemBody := "MIIBkTCB+wIBADA=" // not a key, but PEM-shaped
	switch f.Name {
	case "provider":
		return oneOf(g, "isbank", "etranzact", "rakbank", "accelerationcloud", "oauth2", "fzprof", "fz-profile-1", "nope")
	case "base_url":
		return oneOf(g, g.emuURL, g.emuURL+"/", "https://127.0.0.1:1/", "http://127.0.0.1:1")
	case "token_url":
		return oneOf(g, g.tokenURL, "https://127.0.0.1:1/token")
	case "client_id", "username", "service_account_id", "user_id", "kid", "key_id", "common_name", "organization":
		return oneOf(g, "emu-client-id", "emu-user", "tpp-1", "0015800001041RHAAY")
	case "client_secret", "password", "service_account_secret":
		return oneOf(g, "emu-client-secret-4f/9+Zq=", "emu-password-Xy9!", "emu-service-account-secret-7Hk2")
	case "scope":
		return oneOf(g, "accounts", "openid accounts", "")
	case "auth_method":
		return oneOf(g, "client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth")
	case "basic_encoding":
		return oneOf(g, "rfc6749", "raw")
	case "signing_alg", "alg":
		return oneOf(g, "RS256", "PS256", "ES256", "ES384", "none", "HS256")
	case "type":
		if g.chance(0.1) {
			return oneOf(g, "rsa-2048", "rsa-3072")
		}
		return oneOf(g, "ec-p256", "ec-p384", "rsa-1024", "dsa")
	case "key", "private_key", "tls_client_key":
		return g.keyPEM
	case "signing_key", "tls_key", "dpop_key":
		return oneOf(g, g.names["key"]...)
	case "profile":
		return g.profile
	case "purpose":
		return oneOf[any](g, "request_signing", "client_auth,dpop", []any{"tls", "dpop"}, "tls", "bogus")
	case "allowed_endpoints":
		return oneOf(g, g.tokenURL, "https://as.bank.example/", "https://127.0.0.1/")
	case "allowed_audiences":
		return oneOf(g, "https://as.bank.example", g.tokenURL)
	case "issuer":
		return oneOf(g, g.emuURL+"/fapi", g.emuURL+"/fapi/", "https://127.0.0.1:1/")
	case "grant_type":
		return oneOf(g, "authorization_code", "client_credentials", "password")
	case "redirect_uris":
		return oneOf(g, "https://app.example/cb", "http://127.0.0.1:8400/cb,https://app.example/cb", "http://app.example/cb")
	case "fapi":
		return oneOf(g, "2.0", "1.0", "")
	case "callback_url":
		return oneOf(g, "https://app.example/cb?code=abc&state=xyz&iss="+url.QueryEscape(g.emuURL+"/fapi"), "https://app.example/cb?error=access_denied")
	case "format":
		return oneOf(g, "jws_detached", "http_message_signature")
	case "payload", "body":
		return oneOf(g, "eyJhIjoxfQ", "aGVsbG8=", "", "!!!")
	case "method", "htm":
		return oneOf(g, "GET", "POST", "get", "")
	case "target_uri", "htu":
		return oneOf(g, "https://127.0.0.1/accounts?x=1", "https://rs.bank.example/accounts", "/relative")
	case "header", "headers", "oauth_metadata":
		return oneOf(g, `{"typ":"JOSE"}`, `{"x-request-id":"1"}`, `{"account_id":"0188000049916"}`)
	case "ca_cert", "tls_client_cert", "certificate":
		return "-----BEGIN CERTIFICATE-----\n" + pemBody + "\n-----END CERTIFICATE-----\n"
	case "country":
		return oneOf(g, "GB", "TR", "G")
	case "dns_names", "allowed_hosts":
		return oneOf(g, "127.0.0.1", "127.0.0.0/8,::1", "*.bank.example", "bank.example")
	case "timeout", "default_lifetime", "background_refresh_idle":
		return oneOf[any](g, "30s", "1m", 5, "0", "61s")
	}
	switch f.Type {
	case "boolean":
		return g.chance(0.5)
	case "integer", "number":
		return g.pick(5)
	case "array":
		return []any{"a", "b"}
	case "object":
		return map[string]any{"k": "v"}
	}
	return "v" + fmt.Sprint(g.pick(10))
}

// value draws a value for field f: mostly a canary in some wrapping for a
// sensitive field; for others valid-looking values, hostile values and
// sometimes a canary.
func (g *valueGen) value(f fuzzField) any {
	if f.Sensitive != "" {
		if g.chance(0.85) {
			return g.hostile(g.canary(f))
		}
		if g.chance(0.5) {
			return g.valid(f)
		}
		return g.hostile("")
	}
	switch x := g.r.Float64(); {
	case x < 0.35:
		if v := g.valid(f); v != nil {
			return v
		}
	case x < 0.6:
		return g.hostile(g.canary(f))
	}
	return g.hostile("")
}

// oddNames are path parameters a name rule has to survive, already escaped
// for a URL path.
var oddNames = []string{
	"a..b", "..", ".", "...", "%2e%2e", "a%2e%2eb", "%2E", "a%2Fb", "a%00b", "a%20b", "abc.", "abc-", "-abc", ".abc",
	"_abc_", "a_b-c.d", url.PathEscape("ünïcödé"), url.PathEscape("名前"), url.PathEscape("😀"), url.PathEscape("a\u202eb"),
	strings.Repeat("x", 128), strings.Repeat("y", 129), strings.Repeat("z", 1000), "a;b", "a%3Bb", "a~b", "a'b", "a%22b",
	"%", "a%zz", "CON", "a%0Ab",
}

// name draws a path parameter for family: a seeded name, a name of the
// fuzzer's own (created and deleted as the run goes), or an odd one.
func (g *valueGen) name(family string, seededOK bool) string {
	x := g.r.Float64()
	if seeded := g.names[family]; seededOK && len(seeded) > 0 && x < 0.35 {
		return seeded[g.pick(len(seeded))]
	}
	if x < 0.65 {
		return fmt.Sprintf("fz-%s-%d", family, g.pick(6))
	}
	return oneOf(g, oddNames...)
}
