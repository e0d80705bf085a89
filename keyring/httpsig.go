package keyring

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// HTTPMessage is the request an HTTP message signature covers.
type HTTPMessage struct {
	Method    string
	TargetURI string
	Headers   map[string]string // each is a covered component, by lower-case name
	Body      []byte
}

// HTTPSignature is what a client adds to the request: the Content-Digest,
// Signature-Input and Signature header values.
type HTTPSignature struct {
	ContentDigest  string
	SignatureInput string
	Signature      string
	KID            string
	Alg            string // the RFC 9421 algorithm name
}

// SignatureLabel is the label of the signature SignHTTPMessage makes.
const SignatureLabel = "sig1"

// httpSchemes map key types to the RFC 9421 algorithm they sign with.
var httpSchemes = map[string]struct {
	name string
	scheme
}{
	TypeRSA2048: {"rsa-pss-sha512", scheme{hash: crypto.SHA512, pss: true}},
	TypeRSA3072: {"rsa-pss-sha512", scheme{hash: crypto.SHA512, pss: true}},
	TypeRSA4096: {"rsa-pss-sha512", scheme{hash: crypto.SHA512, pss: true}},
	TypeECP256:  {"ecdsa-p256-sha256", scheme{hash: crypto.SHA256, ec: true}},
	TypeECP384:  {"ecdsa-p384-sha384", scheme{hash: crypto.SHA384, ec: true}},
}

// ContentDigest is the RFC 9530 Content-Digest field value of body with
// sha-256: `sha-256=:<base64>:`.
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// SignHTTPMessage signs m per RFC 9421 with the latest version, covering
// @method, @target-uri, each header of m (in name order) and
// content-digest, with parameters created (now) and keyid, under the label
// sig1. RSA keys sign with rsa-pss-sha512, P-256 with ecdsa-p256-sha256,
// P-384 with ecdsa-p384-sha384. Errors are *FieldError.
func (k *Key) SignHTTPMessage(m HTTPMessage, now time.Time) (*HTTPSignature, error) {
	method := m.Method
	if method == "" || strings.ToUpper(method) != method || strings.ContainsAny(method, " \t\r\n") {
		return nil, &FieldError{Field: "method", Msg: "must be an upper-case HTTP method such as POST"}
	}
	u, err := url.Parse(m.TargetURI)
	if err != nil || !u.IsAbs() || u.Host == "" || strings.ContainsAny(m.TargetURI, " \t\r\n") {
		return nil, &FieldError{Field: "target_uri", Msg: "must be an absolute URI such as https://bank.example/payments"}
	}
	names := make([]string, 0, len(m.Headers))
	values := map[string]string{}
	for name, val := range m.Headers {
		lower := strings.ToLower(strings.TrimSpace(name))
		if lower == "" || !isToken(lower) {
			return nil, &FieldError{Field: "headers", Msg: "has a member whose name is not an HTTP header name"}
		}
		if lower == "content-digest" || lower == "signature" || lower == "signature-input" {
			return nil, &FieldError{Field: "headers", Msg: fmt.Sprintf("may not hold %s: the plugin computes it", lower)}
		}
		if _, dup := values[lower]; dup {
			return nil, &FieldError{Field: "headers", Msg: fmt.Sprintf("names %s twice", lower)}
		}
		if strings.ContainsAny(val, "\r\n") {
			return nil, &FieldError{Field: "headers", Msg: fmt.Sprintf("%s holds a line break", lower)}
		}
		names = append(names, lower)
		values[lower] = strings.TrimSpace(val)
	}
	sort.Strings(names)
	digest := ContentDigest(m.Body)

	var base strings.Builder
	components := []string{`"@method"`, `"@target-uri"`}
	fmt.Fprintf(&base, "\"@method\": %s\n\"@target-uri\": %s\n", method, m.TargetURI)
	for _, n := range names {
		components = append(components, strconv.Quote(n))
		fmt.Fprintf(&base, "%q: %s\n", n, values[n])
	}
	components = append(components, `"content-digest"`)
	fmt.Fprintf(&base, "\"content-digest\": %s\n", digest)

	v := k.Latest()
	params := "(" + strings.Join(components, " ") + ");created=" + strconv.FormatInt(now.Unix(), 10) +
		";keyid=" + strconv.Quote(v.KID)
	base.WriteString(`"@signature-params": ` + params)

	hs, ok := httpSchemes[k.Type]
	if !ok {
		return nil, fmt.Errorf("key type %s cannot sign HTTP messages", k.Type)
	}
	signer, err := v.Signer()
	if err != nil {
		return nil, err
	}
	sig, err := signRaw(signer, hs.scheme, []byte(base.String()))
	if err != nil {
		return nil, err
	}
	return &HTTPSignature{
		ContentDigest:  digest,
		SignatureInput: SignatureLabel + "=" + params,
		Signature:      SignatureLabel + "=:" + base64.StdEncoding.EncodeToString(sig) + ":",
		KID:            v.KID,
		Alg:            hs.name,
	}, nil
}

// isToken says whether s is an RFC 9110 token, as header names are.
func isToken(s string) bool {
	for _, c := range s {
		if c > 0x7e || c <= 0x20 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}
