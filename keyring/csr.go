package keyring

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"strings"
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
	for _, d := range req.DNSNames {
		if d == "" || strings.ContainsAny(d, " /:@") || net.ParseIP(d) != nil {
			return "", &FieldError{Field: "dns_names", Msg: "must be DNS host names"}
		}
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
	tmpl := &x509.CertificateRequest{Subject: subj, DNSNames: req.DNSNames}
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
		return "", errors.New("cannot create the certificate signing request")
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// FieldError is bad input to one named request field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Msg }
