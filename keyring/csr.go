package keyring

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"strings"

	"golang.org/x/net/idna"
)

// OIDOrganizationIdentifier is X.520 organizationIdentifier (2.5.4.97),
// which eIDAS QWACs and QSealCs and the UK Open Banking directory use for
// the PSD2 authorisation number.
var OIDOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// CSRRequest is the subject and names of a certificate signing request.
type CSRRequest struct {
	CommonName             string
	Organization           string
	OrganizationalUnit     string
	Country                string
	OrganizationIdentifier string
	DNSNames               []string
}

// CSR is a PEM certificate signing request for the latest version, signed
// by it (SHA-256 with RSA PKCS #1 v1.5, ECDSA with SHA-256 on P-256 or
// SHA-384 on P-384). It fails naming the field at fault: common_name is
// required, country is two letters, dns_names are host names.
func (k *Key) CSR(req CSRRequest, r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	if strings.TrimSpace(req.CommonName) == "" {
		return "", &FieldError{Field: "common_name", Msg: "is required"}
	}
	if c := req.Country; c != "" && (len(c) != 2 || strings.ToUpper(c) != c || strings.ContainsAny(c, "0123456789")) {
		return "", &FieldError{Field: "country", Msg: "must be a two-letter ISO 3166 code such as GB"}
	}
	dnsNames, err := asciiDNSNames(req.DNSNames)
	if err != nil {
		return "", err
	}
	subj := pkix.Name{CommonName: req.CommonName}
	if req.Organization != "" {
		subj.Organization = []string{req.Organization}
	}
	if req.OrganizationalUnit != "" {
		subj.OrganizationalUnit = []string{req.OrganizationalUnit}
	}
	if req.Country != "" {
		subj.Country = []string{req.Country}
	}
	if req.OrganizationIdentifier != "" {
		subj.ExtraNames = append(subj.ExtraNames,
			pkix.AttributeTypeAndValue{Type: OIDOrganizationIdentifier, Value: req.OrganizationIdentifier})
	}
	signer, err := k.Latest().Signer()
	if err != nil {
		return "", err
	}
	tmpl := &x509.CertificateRequest{Subject: subj, DNSNames: dnsNames}
	switch k.Type {
	case TypeECP256:
		tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
	case TypeECP384:
		tmpl.SignatureAlgorithm = x509.ECDSAWithSHA384
	default:
		tmpl.SignatureAlgorithm = x509.SHA256WithRSA
	}
	der, err := x509.CreateCertificateRequest(r, tmpl, signer)
	if err != nil {
		// Every input was checked above, so this is the caller's (a subject
		// value the x509 encoder refuses), not the plugin's.
		return "", &FieldError{Field: "common_name", Msg: "the subject or dns_names cannot be encoded in a certificate signing request"}
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// FieldError is bad input to one named request field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Msg }

// dnsProfile is IDNA's lookup profile with DNS's length limits (63 per
// label, 253 in all, no empty label) enforced.
var dnsProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))

// asciiDNSNames checks that each name is a DNS host name (a leading "*."
// wildcard allowed) and converts internationalised names to their IDNA
// ASCII form (RFC 5891), which is what certificates carry. It fails naming
// the entry, counted from 1, never quoting it.
func asciiDNSNames(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for i, d := range names {
		wildcard := strings.HasPrefix(d, "*.")
		host := strings.TrimPrefix(d, "*.")
		ascii, err := dnsProfile.ToASCII(host)
		if host == "" || err != nil || net.ParseIP(host) != nil || strings.ContainsAny(ascii, " /:@*") || len(ascii) > 253 {
			return nil, &FieldError{Field: "dns_names", Msg: fmt.Sprintf("entry %d is not a DNS host name", i+1)}
		}
		if wildcard {
			ascii = "*." + ascii
		}
		out = append(out, ascii)
	}
	return out, nil
}
