package keyring_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// testCA issues certificates for the keys' CSRs, the way a bank's
// directory or a QTSP would.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Directory CA"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issueFor issues a client certificate for the key's CSR, after checking
// the CSR's signature with crypto/x509.
func (ca *testCA) issueFor(t *testing.T, k *keyring.Key, cn string) string {
	t.Helper()
	csrPEM, err := k.CSR(keyring.CSRRequest{CommonName: cn, Organization: "Example TPP", Country: "GB",
		OrganizationIdentifier: "PSDGB-FCA-123456"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(csrPEM))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x1a2b3c), RawSubject: csr.RawSubject,
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(90 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestAttachCertificateChecksTheLeaf(t *testing.T) {
	k := freshKey(t, keyring.TypeECP256)
	other := freshKey(t, keyring.TypeECP256)
	ca := newTestCA(t)
	if err := k.AttachCertificate(ca.issueFor(t, other, "other") + ca.pem); err == nil {
		t.Fatal("a leaf for another key was attached")
	}
	if k.Certificate != nil {
		t.Fatal("a refused certificate was kept")
	}
	if err := k.AttachCertificate(ca.pem + ca.issueFor(t, k, "tpp")); err == nil {
		t.Error("a chain with the CA first was attached")
	}
	for _, bad := range []string{"", "not pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if err := k.AttachCertificate(bad); err == nil {
			t.Errorf("%q attached", bad)
		}
	}
	if err := k.AttachCertificate(ca.issueFor(t, k, "tpp.example") + ca.pem); err != nil {
		t.Fatal(err)
	}
	s := k.Certificate.Summary()
	if s.Version != 1 || s.Subject != "CN=tpp.example,O=Example TPP,C=GB,organizationIdentifier=PSDGB-FCA-123456" || s.Issuer != "CN=Test Directory CA" ||
		s.Serial != "1a:2b:3c" || !s.NotAfter.Equal(t0.Add(90*24*time.Hour)) {
		t.Errorf("summary %+v", s)
	}
	if n := strings.Count(k.Certificate.ChainPEM(), "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("chain PEM has %d certificates", n)
	}
}
