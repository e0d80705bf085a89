//go:build e2e

package e2e

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/keyas"
)

// TestDPoPAndMTLSWithKeysOnRealVault: a FAPI-2.0-style bank that wants
// private_key_jwt, mTLS with a certificate its CA issued, and DPoP-bound
// tokens with server nonces. All three keys are generated in Vault; the
// bank fetches the client's JWKS from Vault without a token, checks the
// proofs with go-jose, and issues a DPoP token; dpop/<config> then proofs
// a resource request bound to it.
func TestDPoPAndMTLSWithKeysOnRealVault(t *testing.T) {
	t.Parallel()
	mount := fmt.Sprintf("bankauth-%d", mountSeq.Add(1))
	if err := vault.Mount("bankauth", mount); err != nil {
		t.Fatal(err)
	}
	sig := cliJSON(t, "write", mount+"/key/sig", "type=rsa-3072", "purpose=client_auth", "public_jwks=true")
	dpop := cliJSON(t, "write", mount+"/key/dpop", "type=ec-p256", "purpose=dpop")
	cliJSON(t, "write", mount+"/key/transport", "type=ec-p384", "purpose=tls")
	csrPEM := cliJSON(t, "write", mount+"/key/transport/csr", "common_name=tpp-transport", "organization=Example TPP")["csr"].(string)
	block, _ := pem.Decode([]byte(csrPEM))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("CSR: %v", err)
	}
	chain, clientCA := issueClientCert(t, csr, 77, time.Now().Add(30*24*time.Hour))
	cliJSON(t, "write", mount+"/key/transport/certificate", "certificate=@"+writeFile(t, "chain.pem", chain))

	jwksURL := vault.Addr + "/v1/" + mount + "/jwks/sig"
	as, err := keyas.Start(string(clientCA), "tpp-fapi2", func() (jose.JSONWebKeySet, error) {
		var set jose.JSONWebKeySet
		resp, err := http.Get(jwksURL) // no Vault token, as a bank fetches a jwks_uri
		if err != nil {
			return set, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return set, fmt.Errorf("%s: %d", jwksURL, resp.StatusCode)
		}
		return set, json.Unmarshal(body, &set)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	// The key's owner pins its assertions to this bank's token endpoint.
	cliJSON(t, "write", mount+"/key/sig", "allowed_endpoints="+as.URL+"/", "allowed_audiences="+as.TokenURL)
	if _, err := vault.MustCLI("write", mount+"/config/fapi2", "provider=oauth2", "token_url="+as.TokenURL,
		"client_id=tpp-fapi2", "auth_method=private_key_jwt", "signing_key=sig", "tls_key=transport",
		"dpop_key=dpop", "ca_cert=@"+writeFile(t, "ca.pem", []byte(as.CAPEM))); err != nil {
		t.Fatal(err)
	}
	tok := cliJSON(t, "read", mount+"/token/fapi2")
	at, _ := tok["access_token"].(string)
	seen.add(at)
	s := as.Seen()
	if tok["token_type"] != "DPoP" || s.Requests != 2 || len(s.KIDs) != 1 || s.KIDs[0] != sig["kid"] ||
		s.JKTs[0] != dpop["kid"] || s.Subjects[0] != "tpp-transport" {
		t.Fatalf("token %v; the bank saw %+v", tok["token_type"], s)
	}

	proof := cliJSON(t, "write", mount+"/dpop/fapi2", "htm=GET", "htu=https://rs.bank.example/accounts")["dpop"].(string)
	obj, err := jose.ParseSigned(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := obj.Signatures[0].Protected
	payload, err := obj.Verify(h.JSONWebKey)
	if err != nil || h.ExtraHeaders["typ"] != "dpop+jwt" {
		t.Fatalf("go-jose: %v", err)
	}
	var pc struct{ HTM, HTU, ATH, Nonce string }
	_ = json.Unmarshal(payload, &pc)
	sum := sha256.Sum256([]byte(at))
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if pc.HTM != "GET" || pc.HTU != "https://rs.bank.example/accounts" || pc.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) ||
		pc.Nonce != keyas.Nonce || as.BoundTo(at) != base64.RawURLEncoding.EncodeToString(tp) {
		t.Errorf("resource proof %+v", pc)
	}
	st := cliJSON(t, "read", mount+"/status/fapi2")["keys"].(map[string]any)["tls_key"].(map[string]any)
	if st["key"] != "transport" || st["certificate_not_after"] == nil {
		t.Errorf("status keys.tls_key %v", st)
	}
}
