package bankauth

import (
	"context"
	"errors"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathKeyCSR(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "key/" + framework.GenericNameRegex("name") + "/csr$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "bankauth",
			OperationSuffix: "key-csr",
		},
		Fields: map[string]*framework.FieldSchema{
			"name":                    {Type: framework.TypeNameString, Required: true, Description: "Name of the key."},
			"common_name":             {Type: framework.TypeString, Required: true, Description: "Subject CN (UK OB: the software statement ID)."},
			"organization":            {Type: framework.TypeString, Description: "Subject O."},
			"organizational_unit":     {Type: framework.TypeString, Description: "Subject OU (UK OB: the organisation ID)."},
			"country":                 {Type: framework.TypeString, Description: "Subject C, two letters (e.g. GB)."},
			"organization_identifier": {Type: framework.TypeString, Description: "Subject organizationIdentifier (OID 2.5.4.97), e.g. PSDGB-FCA-123456 for an eIDAS QWAC or QSealC."},
			"dns_names":               {Type: framework.TypeCommaStringSlice, Description: "DNS subject alternative names."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.keyCSR,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "generate"}},
		},
		HelpSynopsis:    pathKeyCSRHelpSyn,
		HelpDescription: pathKeyCSRHelpDesc,
	}
}

// keyCSR answers a PEM CSR for the latest version, signed by it.
func (b *backend) keyCSR(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	k, resp, err := existingKey(ctx, req.Storage, name)
	if k == nil {
		return resp, err
	}
	csr, err := k.CSR(keyring.CSRRequest{
		CommonName:             d.Get("common_name").(string),
		Organization:           d.Get("organization").(string),
		OrganizationalUnit:     d.Get("organizational_unit").(string),
		Country:                d.Get("country").(string),
		OrganizationIdentifier: d.Get("organization_identifier").(string),
		DNSNames:               d.Get("dns_names").([]string),
	}, nil)
	var fe *keyring.FieldError
	if errors.As(err, &fe) {
		return logical.ErrorResponse("invalid %s: %s", fe.Field, fe.Msg), nil
	}
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"csr": csr, "kid": k.Latest().KID, "version": k.LatestVersion()}}, nil
}

const pathKeyCSRHelpSyn = `Make a certificate signing request for the key's latest version.`

const pathKeyCSRHelpDesc = `
vault write bankauth/key/<name>/csr common_name=... organization=...
  organizational_unit=... country=GB organization_identifier=PSDGB-FCA-123456
  dns_names=tpp.example.com

answers csr: a PEM PKCS #10 request for the latest version's public key,
signed by it. Send it to the bank's directory or your QTSP, then attach the
certificate you get back at key/<name>/certificate.
`
