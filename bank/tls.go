package bank

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
)

// Common mTLS fields: any provider may present a client certificate.
const (
	FieldTLSClientCert = "tls_client_cert"
	FieldTLSClientKey  = "tls_client_key"
)

// validateClientCert checks the mTLS pair: both or neither, a PEM
// certificate, a PEM private key, and a key that belongs to the certificate.
func (c *Config) validateClientCert() error {
	switch {
	case c.TLSClientCert == "" && c.TLSClientKey == "":
		return nil
	case c.TLSClientKey == "":
		return fieldErr(FieldTLSClientKey, "is required when tls_client_cert is set")
	case c.TLSClientCert == "":
		return fieldErr(FieldTLSClientCert, "is required when tls_client_key is set")
	}
	if _, err := parseCertificatePEM(c.TLSClientCert); err != nil {
		return fieldErr(FieldTLSClientCert, "%s", err.Error())
	}
	if _, err := ParsePrivateKeyPEM(c.TLSClientKey); err != nil {
		return fieldErr(FieldTLSClientKey, "%s", err.Error())
	}
	if _, err := tls.X509KeyPair([]byte(c.TLSClientCert), []byte(c.TLSClientKey)); err != nil {
		return fieldErr(FieldTLSClientKey, "does not match tls_client_cert")
	}
	return nil
}

// clientCertificate is the config's mTLS certificate, or nil.
func (c *Config) clientCertificate() (*tls.Certificate, error) {
	if c.keys.TLS != nil && c.Settings[FieldTLSKey] != "" {
		return c.keys.TLS.TLSCertificate()
	}
	if c.TLSClientCert == "" {
		return nil, nil
	}
	pair, err := tls.X509KeyPair([]byte(c.TLSClientCert), []byte(c.TLSClientKey))
	if err != nil {
		return nil, fieldErr(FieldTLSClientKey, "does not match tls_client_cert")
	}
	return &pair, nil
}

// parseCertificatePEM reads the first certificate of a PEM bundle.
func parseCertificatePEM(text string) (*x509.Certificate, error) {
	rest := []byte(strings.TrimSpace(text))
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errorString("contains no PEM-encoded certificate")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, errorString("is not a valid X.509 certificate")
		}
		return cert, nil
	}
}

// ParsePrivateKeyPEM reads an RSA, ECDSA or Ed25519 private key in PKCS#8,
// PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY") PEM. Its errors
// never quote the input.
func ParsePrivateKeyPEM(text string) (crypto.Signer, error) {
	rest := []byte(strings.TrimSpace(text))
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errorString("contains no PEM-encoded private key")
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "" {
			return nil, errorString("is an encrypted private key (give it unencrypted)")
		}
		if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			switch k := k.(type) {
			case *rsa.PrivateKey:
				return k, nil
			case *ecdsa.PrivateKey:
				return k, nil
			case ed25519.PrivateKey:
				return k, nil
			}
			return nil, errorString("holds an unsupported key type")
		}
		if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			return k, nil
		}
		return nil, errorString("is not a valid PKCS#8, PKCS#1 or EC private key")
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
