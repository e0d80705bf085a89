package bankauth

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathKeyCertificate(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "key/" + framework.GenericNameRegex("name") + "/certificate$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "bankauth",
			OperationSuffix: "key-certificate",
		},
		Fields: map[string]*framework.FieldSchema{
			"name":        {Type: framework.TypeNameString, Required: true, Description: "Name of the key."},
			"certificate": {Type: framework.TypeString, Required: true, Description: "PEM certificate chain: the leaf, issued for a version of this key, first."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.keyCertificateWrite,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "attach"}},
			logical.ReadOperation: &framework.PathOperation{Callback: b.keyCertificateRead,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
		},
		HelpSynopsis:    pathKeyCertificateHelpSyn,
		HelpDescription: pathKeyCertificateHelpDesc,
	}
}

// keyCertificateWrite attaches a chain whose leaf certifies a version.
func (b *backend) keyCertificateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	lock := b.keys.lock(name)
	lock.Lock()
	defer lock.Unlock()
	k, resp, err := existingKey(ctx, req.Storage, name)
	if k == nil {
		return resp, err
	}
	if err := k.AttachCertificate(d.Get("certificate").(string)); err != nil {
		return logical.ErrorResponse("invalid certificate: %s", err.Error()), nil
	}
	if err := b.writeKey(ctx, req.Storage, name, k); err != nil {
		return nil, err
	}
	if err := b.forgetKeyUsers(ctx, req.Storage, name); err != nil {
		return nil, err
	}
	return certificateResponse(k.Certificate.ChainPEM(), certificateSummary(k)), nil
}

func (b *backend) keyCertificateRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	k, err := readKey(ctx, req.Storage, d.Get("name").(string))
	if err != nil || k == nil || k.Certificate == nil {
		return nil, err
	}
	return certificateResponse(k.Certificate.ChainPEM(), certificateSummary(k)), nil
}

func certificateResponse(chain string, summary map[string]any) *logical.Response {
	data := map[string]any{"certificate": chain}
	for k, v := range summary {
		data[k] = v
	}
	return &logical.Response{Data: data}
}

const pathKeyCertificateHelpSyn = `Attach the certificate issued for a key, or read its summary.`

const pathKeyCertificateHelpDesc = `
vault write bankauth/key/<name>/certificate certificate=@chain.pem

attaches a PEM chain, leaf first. The leaf must certify a version of the key
(it is refused otherwise). Reads show certificate (the chain), subject,
issuer, serial, not_after and version (the key version the leaf certifies).
The JWK of that version carries the chain as x5c, and a config naming the
key as tls_key presents it for mutual TLS.
`
