package keyring_test

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// A CSR of each key type is signed by the latest version, as crypto/x509
// checks it, and carries the subject eIDAS and UK OB certificates need.
func TestCSRCheckedByX509(t *testing.T) {
	for _, typ := range keyring.Types {
		k := testKey(t, typ)
		out, err := k.CSR(keyring.CSRRequest{CommonName: "0015800001041RHAAY", Organization: "Example TPP Ltd",
			OrganizationalUnit: "0015800001041RHAAY", Country: "GB", OrganizationIdentifier: "PSDGB-FCA-123456",
			DNSNames: []string{"tpp.example.com"}}, nil)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		block, _ := pem.Decode([]byte(out))
		if block == nil || block.Type != "CERTIFICATE REQUEST" {
			t.Fatalf("%s: not a PEM CSR: %q", typ, out)
		}
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := csr.CheckSignature(); err != nil {
			t.Errorf("%s: signature: %v", typ, err)
		}
		if !publicOf(t, k.Latest()).(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
			t.Errorf("%s: CSR is not for the latest version", typ)
		}
		s := csr.Subject
		if s.CommonName != "0015800001041RHAAY" || !slices.Equal(s.Organization, []string{"Example TPP Ltd"}) ||
			!slices.Equal(s.OrganizationalUnit, []string{"0015800001041RHAAY"}) || !slices.Equal(s.Country, []string{"GB"}) ||
			!slices.Equal(csr.DNSNames, []string{"tpp.example.com"}) {
			t.Errorf("%s: subject %v dns %v", typ, s, csr.DNSNames)
		}
		var orgID string
		for _, n := range s.Names {
			if n.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 97}) {
				orgID, _ = n.Value.(string)
			}
		}
		if orgID != "PSDGB-FCA-123456" {
			t.Errorf("%s: organizationIdentifier %q", typ, orgID)
		}
	}
}

func TestCSRRefusesBadFields(t *testing.T) {
	k := testKey(t, keyring.TypeECP256)
	for field, req := range map[string]keyring.CSRRequest{
		"common_name": {},
		"country":     {CommonName: "x", Country: "GBR"},
		"dns_names":   {CommonName: "x", DNSNames: []string{"10.0.0.1"}},
	} {
		_, err := k.CSR(req, nil)
		var fe *keyring.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func TestCSRConvertsInternationalNamesToIDNA(t *testing.T) {
	k := testKey(t, keyring.TypeECP256)
	out, err := k.CSR(keyring.CSRRequest{CommonName: "x", DNSNames: []string{"bücher.example", "*.ü.example", "ü", "tpp.example.com"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(out))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"xn--bcher-kva.example", "*.xn--tda.example", "xn--tda", "tpp.example.com"}; !slices.Equal(csr.DNSNames, want) {
		t.Fatalf("dns names %v, want %v", csr.DNSNames, want)
	}
	for _, bad := range []string{"a b.example", "", "*.", "x..y", "10.0.0.1", strings.Repeat("a", 64) + ".example", "\x00.example"} {
		_, err := k.CSR(keyring.CSRRequest{CommonName: "x", DNSNames: []string{"ok.example", bad}}, nil)
		var fe *keyring.FieldError
		if !errors.As(err, &fe) || fe.Field != "dns_names" || fe.Msg != "entry 2 is not a DNS host name" {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}
