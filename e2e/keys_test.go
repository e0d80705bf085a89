//go:build e2e

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/httpsigverify"
)

// cliJSON runs the vault CLI as root with -format=json and returns data.
func cliJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	args = append([]string{args[0], "-format=json"}, args[1:]...)
	out, err := vault.MustCLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	var sec struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &sec); err != nil {
		t.Fatalf("vault %v: %v\n%s", args, err, out)
	}
	return sec.Data
}

// fetchJWKS GETs <mount>/jwks/<name> over real HTTP without a Vault token,
// as a bank fetching a jwks_uri does; it returns the status and, on 200,
// the set as go-jose reads it.
func fetchJWKS(t *testing.T, mount, name string) (int, jose.JSONWebKeySet) {
	t.Helper()
	resp, err := http.Get(vault.Addr + "/v1/" + mount + "/jwks/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var set jose.JSONWebKeySet
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("JWKS content type %q", ct)
		}
		if err := json.Unmarshal(body, &set); err != nil {
			t.Fatalf("go-jose cannot read the JWKS %s: %v", body, err)
		}
	}
	return resp.StatusCode, set
}

// TestKeysOnRealVault: a key generated in Vault, rotated, its JWKS fetched
// without a token over HTTP and checked with go-jose, and signatures made
// through the vault CLI verified with that JWKS by go-jose and an
// independent RFC 9421 verifier.
func TestKeysOnRealVault(t *testing.T) {
	t.Parallel()
	mount := fmt.Sprintf("bankauth-%d", mountSeq.Add(1))
	if err := vault.Mount("bankauth", mount); err != nil {
		t.Fatal(err)
	}
	created := cliJSON(t, "write", mount+"/key/ob", "type=rsa-2048", "purpose=request_signing", "public_jwks=true")
	if created["type"] != "rsa-2048" || created["latest_version"] != float64(1) {
		t.Fatalf("created %v", created)
	}
	cliJSON(t, "write", mount+"/key/private", "type=ec-p256", "purpose=request_signing")
	if code, _ := fetchJWKS(t, mount, "private"); code != http.StatusNotFound {
		t.Errorf("a key without public_jwks answers %d", code)
	}
	if code, _ := fetchJWKS(t, mount, "missing"); code != http.StatusNotFound {
		t.Errorf("a missing key answers %d", code)
	}
	code, set := fetchJWKS(t, mount, "ob")
	if code != http.StatusOK || len(set.Keys) != 1 || set.Keys[0].KeyID != created["kid"] {
		t.Fatalf("JWKS %d %+v", code, set.Keys)
	}

	if _, err := vault.MustCLI("write", "-f", mount+"/key/ob/rotate"); err != nil {
		t.Fatal(err)
	}
	key := cliJSON(t, "read", mount+"/key/ob")
	code, set = fetchJWKS(t, mount, "ob")
	if code != http.StatusOK || len(set.Keys) != 2 || set.Keys[0].KeyID != key["kid"] || set.Keys[1].KeyID != created["kid"] {
		t.Fatalf("JWKS after rotation %d %+v", code, set.Keys)
	}

	// Detached JWS, verified with the key the JWKS publishes.
	payload := []byte(`{"Data":{"Initiation":{"InstructedAmount":{"Amount":"10.00","Currency":"GBP"}}}}`)
	sig := cliJSON(t, "write", mount+"/sign/ob", "format=jws_detached",
		"payload="+base64.StdEncoding.EncodeToString(payload), `header={"typ":"JOSE"}`)
	obj, err := jose.ParseDetached(sig["signature"].(string), payload, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	kid := obj.Signatures[0].Protected.KeyID
	if keys := set.Key(kid); len(keys) != 1 || kid != key["kid"] {
		t.Fatalf("signed with kid %s, not the latest published", kid)
	} else if err := obj.DetachedVerify(payload, keys[0].Key); err != nil {
		t.Errorf("go-jose does not verify the detached JWS with the JWKS key: %v", err)
	}

	// RFC 9421, verified with the same published key.
	body := []byte(`{"amount":"10.00"}`)
	target := "https://api.bank.example/v1/payments"
	hs := cliJSON(t, "write", mount+"/sign/ob", "format=http_message_signature", "method=POST",
		"target_uri="+target, `headers={"x-request-id":"e2e-1"}`, "body="+base64.StdEncoding.EncodeToString(body))
	req, _ := http.NewRequest("POST", target, bytes.NewReader(body))
	req.Header.Set("X-Request-ID", "e2e-1")
	for h, f := range map[string]string{"Content-Digest": "content_digest", "Signature-Input": "signature_input", "Signature": "signature"} {
		req.Header.Set(h, hs[f].(string))
	}
	if _, err := httpsigverify.Verify(req, body, "sig1", set.Key(kid)[0].Key); err != nil {
		t.Errorf("RFC 9421 signature: %v", err)
	}
}

// TestSignPolicyLimitsAnApp: an app token whose policy allows sign/<one
// key> signs with it and is refused every other key and the key itself.
func TestSignPolicyLimitsAnApp(t *testing.T) {
	t.Parallel()
	mount := fmt.Sprintf("bankauth-%d", mountSeq.Add(1))
	if err := vault.Mount("bankauth", mount); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, "write", mount+"/key/payments", "type=ec-p256", "purpose=request_signing")
	cliJSON(t, "write", mount+"/key/other", "type=ec-p256", "purpose=request_signing")
	policy := filepath.Join(t.TempDir(), "signer.hcl")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("path %q {\n  capabilities = [\"update\"]\n}\n", mount+"/sign/payments")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.MustCLI("policy", "write", mount+"-signer", policy); err != nil {
		t.Fatal(err)
	}
	out, err := vault.MustCLI("token", "create", "-policy="+mount+"-signer", "-field=token")
	if err != nil {
		t.Fatal(err)
	}
	app := strings.TrimSpace(out)
	payload := "payload=" + base64.StdEncoding.EncodeToString([]byte("{}"))
	if r := vault.CLI(app, "write", mount+"/sign/payments", "format=jws_detached", payload); r.ExitCode != 0 ||
		!strings.Contains(r.Stdout, "signature") {
		t.Errorf("the app cannot sign with its key: %d %s %s", r.ExitCode, r.Stdout, r.Stderr)
	}
	for _, args := range [][]string{
		{"write", mount + "/sign/other", "format=jws_detached", payload},
		{"read", mount + "/key/payments"},
		{"write", "-f", mount + "/key/payments/rotate"},
	} {
		if r := vault.CLI(app, args...); r.ExitCode == 0 || !strings.Contains(r.Stderr, "permission denied") {
			t.Errorf("vault %v as the app: exit %d %s", args, r.ExitCode, r.Stderr)
		}
	}
}

// TestKeyCSRAndCertificateOnRealVault: a CSR from Vault, checked with
// crypto/x509 and issued by a test CA; the certificate attached with the
// CLI from a file shows in the read and as x5c in the JWKS. An imported
// key's PEM and a bad import never reach Vault's log.
func TestKeyCSRAndCertificateOnRealVault(t *testing.T) {
	t.Parallel()
	mount := fmt.Sprintf("bankauth-%d", mountSeq.Add(1))
	if err := vault.Mount("bankauth", mount); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, "write", mount+"/key/qwac", "type=ec-p256", "purpose=tls", "public_jwks=true")
	csrOut := cliJSON(t, "write", mount+"/key/qwac/csr", "common_name=0015800001041RHAAY", "organization=Example TPP",
		"country=GB", "organization_identifier=PSDGB-FCA-123456", "dns_names=tpp.example.com")
	block, _ := pem.Decode([]byte(csrOut["csr"].(string)))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("CSR from Vault: %v", err)
	}
	notAfter := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	chainPEM, _ := issueClientCert(t, csr, 4242, notAfter)
	chain := filepath.Join(t.TempDir(), "chain.pem")
	if err := os.WriteFile(chain, chainPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, "write", mount+"/key/qwac/certificate", "certificate=@"+chain)
	cert := cliJSON(t, "read", mount+"/key/qwac/certificate")
	if cert["serial"] != "10:92" || cert["issuer"] != "CN=E2E Directory CA" || cert["not_after"] != notAfter.Format(time.RFC3339) {
		t.Errorf("certificate read %v", cert)
	}
	_, set := fetchJWKS(t, mount, "qwac")
	if len(set.Keys) != 1 || len(set.Keys[0].Certificates) != 2 || set.Keys[0].Certificates[0].SerialNumber.Int64() != 4242 {
		t.Errorf("JWKS x5c: %+v", set.Keys)
	}

	// Import: the PEM is write-only, and a refused import does not echo it.
	imp, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(imp)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	r := vault.CLI("", "write", mount+"/key/bad", "key=@"+keyFile, "type=rsa-2048")
	pemBody := strings.Split(string(keyPEM), "\n")[1]
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "invalid type") || strings.Contains(r.Stderr, pemBody) {
		t.Errorf("mismatched import: %d %s", r.ExitCode, r.Stderr)
	}
	got := cliJSON(t, "write", mount+"/key/imported", "key=@"+keyFile, "purpose=tls")
	if got["type"] != "ec-p384" || strings.Contains(fmt.Sprint(got), pemBody) {
		t.Errorf("import answer %v", got)
	}
	seen.add(pemBody) // TestMain scans the whole log for it at the end too
	if log := vault.Log(); strings.Contains(log, pemBody) || strings.Contains(log, "PRIVATE KEY") {
		t.Error("private key material appears in Vault's log")
	}
}

// issueClientCert plays a directory CA: it issues a client certificate for
// the CSR's key and subject (serial, notAfter) and returns the chain (leaf,
// then the CA) and the CA's PEM.
func issueClientCert(t *testing.T, csr *x509.CertificateRequest, serial int64, notAfter time.Time) (chainPEM, caPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "E2E Directory CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter.Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(serial),
		RawSubject: csr.RawSubject, NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature},
		ca, csr.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), caPEM...), caPEM
}

// writeFile writes data to a new file in a temporary directory.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
