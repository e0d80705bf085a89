package bankauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// issueForCSR plays the directory's CA: it checks the CSR with crypto/x509
// and issues a client certificate for its key, returning leaf and CA PEM.
func issueForCSR(t *testing.T, csrPEM string, notAfter time.Time) (leaf, caPEM string) {
	t.Helper()
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("not a PEM CSR: %q", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signature: %v", err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Directory CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x0badcafe), RawSubject: csr.RawSubject, DNSNames: csr.DNSNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, csr.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
}

func TestKeyCSRAndCertificate(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/qwac", map[string]any{"type": "rsa-2048", "purpose": "tls"})
	csr := e.mustOK(t, logical.UpdateOperation, "key/qwac/csr", map[string]any{
		"common_name": "0015800001041RHAAY", "organization": "Example TPP Ltd", "organizational_unit": "0015800001041RHAAY",
		"country": "GB", "organization_identifier": "PSDGB-FCA-123456", "dns_names": "tpp.example.com,api.tpp.example.com"}).Data
	assertNoPrivate(t, e, "qwac", csr)
	block, _ := pem.Decode([]byte(csr["csr"].(string)))
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || req.CheckSignature() != nil {
		t.Fatalf("CSR: %v", err)
	}
	orgID := ""
	for _, n := range req.Subject.Names {
		if n.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 97}) {
			orgID, _ = n.Value.(string)
		}
	}
	if req.Subject.CommonName != "0015800001041RHAAY" || orgID != "PSDGB-FCA-123456" || len(req.DNSNames) != 2 ||
		req.Subject.Country[0] != "GB" {
		t.Errorf("CSR subject %v org id %q dns %v", req.Subject, orgID, req.DNSNames)
	}
	for field, data := range map[string]map[string]any{
		"invalid common_name": {"organization": "x"},
		"invalid country":     {"common_name": "x", "country": "United Kingdom"},
		"invalid dns_names":   {"common_name": "x", "dns_names": "127.0.0.1"},
	} {
		resp, err := e.request(t, logical.UpdateOperation, "key/qwac/csr", data)
		if msg := errorText(resp, err); err != nil || !strings.HasPrefix(msg, field) {
			t.Errorf("%s: got %q", field, msg)
		}
	}

	notAfter := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	leaf, caPEM := issueForCSR(t, csr["csr"].(string), notAfter)
	// A certificate for another key is refused, and nothing is attached.
	e.mustOK(t, logical.CreateOperation, "key/other", map[string]any{"type": "ec-p256", "purpose": "tls"})
	otherCSR := e.mustOK(t, logical.UpdateOperation, "key/other/csr", map[string]any{"common_name": "other"}).Data["csr"].(string)
	otherLeaf, _ := issueForCSR(t, otherCSR, notAfter)
	resp, err := e.request(t, logical.UpdateOperation, "key/qwac/certificate", map[string]any{"certificate": otherLeaf})
	if msg := errorText(resp, err); !strings.HasPrefix(msg, "invalid certificate: the first certificate's public key is not a version") {
		t.Errorf("foreign leaf: %q", msg)
	}
	if resp, err := e.request(t, logical.ReadOperation, "key/qwac/certificate", nil); !isNotFound(resp, err) {
		t.Fatalf("a refused certificate was attached: %v", resp.Data)
	}

	// After a rotation the leaf still matches version 1.
	e.mustOK(t, logical.UpdateOperation, "key/qwac/rotate", nil)
	got := e.mustOK(t, logical.UpdateOperation, "key/qwac/certificate", map[string]any{"certificate": leaf + caPEM}).Data
	if err := contains(got["subject"].(string), "CN=0015800001041RHAAY", "O=Example TPP Ltd", "C=GB", "organizationIdentifier=PSDGB-FCA-123456"); err != nil {
		t.Errorf("subject: %v", err)
	}
	if got["issuer"] != "CN=Test Directory CA" || got["serial"] != "0b:ad:ca:fe" || got["version"] != 1 ||
		got["not_after"] != notAfter.Format(time.RFC3339) || strings.Count(got["certificate"].(string), "BEGIN CERTIFICATE") != 2 {
		t.Errorf("certificate write %v", got)
	}
	read := e.mustOK(t, logical.ReadOperation, "key/qwac/certificate", nil).Data
	if stringify(read) != stringify(got) {
		t.Errorf("read %v differs from write %v", read, got)
	}
	summary := e.mustOK(t, logical.ReadOperation, "key/qwac", nil).Data["certificate"].(map[string]any)
	if summary["serial"] != "0b:ad:ca:fe" || summary["not_after"] != notAfter.Format(time.RFC3339) {
		t.Errorf("key read certificate %v", summary)
	}
	resp, err = e.request(t, logical.UpdateOperation, "key/qwac/certificate", map[string]any{"certificate": []any{"x"}})
	if msg := errorText(resp, err); msg != "invalid certificate: expected a string" {
		t.Errorf("list certificate: %q", msg)
	}
}

// contains fails naming the first of subs that s lacks.
func contains(s string, subs ...string) error {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return fmt.Errorf("%q lacks %q", s, sub)
		}
	}
	return nil
}
