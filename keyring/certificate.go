package keyring

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Certificate is a certificate chain attached to a key: the leaf, issued
// for one version's public key, then its issuers.
type Certificate struct {
	Version int      `json:"version"` // the key version the leaf certifies
	Chain   [][]byte `json:"chain"`   // DER, leaf first
}

// CertificateSummary is what a read shows of the attached leaf.
type CertificateSummary struct {
	Version  int
	Subject  string
	Issuer   string
	Serial   string // hex, colon-separated
	NotAfter time.Time
}

// AttachCertificate parses a PEM chain (leaf first) and attaches it to the
// version whose public key the leaf certifies. A leaf that matches no
// version is refused.
func (k *Key) AttachCertificate(pemText string) error {
	var chain [][]byte
	rest := []byte(pemText)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a %q PEM block: only certificates belong here", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d cannot be parsed: %v", len(chain)+1, err)
		}
		chain = append(chain, block.Bytes)
	}
	if len(chain) == 0 {
		return errors.New("holds no PEM certificate")
	}
	leaf, _ := x509.ParseCertificate(chain[0])
	for _, v := range k.Versions {
		pub, err := v.Public()
		if err != nil {
			return err
		}
		if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(leaf.PublicKey) {
			k.Certificate = &Certificate{Version: v.Number, Chain: chain}
			return nil
		}
	}
	return errors.New("the first certificate's public key is not a version of this key")
}

// Leaf is the attached leaf certificate, or nil.
func (c *Certificate) Leaf() *x509.Certificate {
	if c == nil || len(c.Chain) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Chain[0])
	if err != nil {
		return nil
	}
	return leaf
}

// Summary describes the attached leaf, or returns nil when there is none.
func (c *Certificate) Summary() *CertificateSummary {
	leaf := c.Leaf()
	if leaf == nil {
		return nil
	}
	serial := fmt.Sprintf("%x", leaf.SerialNumber)
	if len(serial)%2 == 1 {
		serial = "0" + serial
	}
	var parts []string
	for i := 0; i < len(serial); i += 2 {
		parts = append(parts, serial[i:i+2])
	}
	return &CertificateSummary{Version: c.Version, Subject: dnString(leaf.Subject), Issuer: dnString(leaf.Issuer),
		Serial: strings.Join(parts, ":"), NotAfter: leaf.NotAfter.UTC()}
}

// ChainPEM is the attached chain as PEM, leaf first.
func (c *Certificate) ChainPEM() string {
	var sb strings.Builder
	for _, der := range c.Chain {
		_ = pem.Encode(&sb, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return sb.String()
}

// dnString is pkix.Name.String, except that organizationIdentifier
// (2.5.4.97, which eIDAS and UK OB certificates carry) reads as text
// rather than as the hex of its DER.
func dnString(n pkix.Name) string {
	var extra []pkix.AttributeTypeAndValue
	orgID := ""
	for _, atv := range n.Names {
		if atv.Type.Equal(OIDOrganizationIdentifier) {
			if v, ok := atv.Value.(string); ok {
				orgID = v
				continue
			}
		}
		extra = append(extra, atv)
	}
	if orgID == "" {
		return n.String()
	}
	var plain pkix.Name
	plain.FillFromRDNSequence(&pkix.RDNSequence{extra})
	s := plain.String()
	esc := strings.NewReplacer(`\`, `\\`, `,`, `\,`, `+`, `\+`, `"`, `\"`, `<`, `\<`, `>`, `\>`, `;`, `\;`).Replace(orgID)
	if s == "" {
		return "organizationIdentifier=" + esc
	}
	return s + ",organizationIdentifier=" + esc
}
