package bankauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
)

// stringify renders response data canonically, for comparisons and scans.
func stringify(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// verifyJWSInput checks a JWS signature over input with crypto/rsa or
// crypto/ecdsa directly (go-jose refuses crit names it does not know).
func verifyJWSInput(pub any, alg string, input, sig []byte) bool {
	h := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[alg[2:]]
	hh := h.New()
	hh.Write(input)
	digest := hh.Sum(nil)
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] == 'P' {
			return rsa.VerifyPSS(p, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(p, h, digest, sig) == nil
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		return ecdsa.Verify(p, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
	}
	return false
}

// isNotFound reports whether a handler's answer is the raw 404 Vault
// sends on, whose errors say what was not found.
func isNotFound(resp *logical.Response, err error) bool {
	if err != nil || resp == nil || resp.Data[logical.HTTPStatusCode] != http.StatusNotFound {
		return false
	}
	body, _ := resp.Data[logical.HTTPRawBody].(string)
	return strings.HasPrefix(body, `{"errors":["`) && strings.HasSuffix(body, `: not found"]}`)
}
