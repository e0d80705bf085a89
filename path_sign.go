package bankauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Formats sign/<key> answers in.
const (
	formatJWSDetached  = "jws_detached"
	formatHTTPMsgSig   = "http_message_signature"
	signPathPrefix     = "sign/"
	fieldSignHeader    = "header"
	fieldSignHeaders   = "headers"
	maxSignPayloadSize = 4 << 20
)

func pathSign(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "sign/" + framework.GenericNameRegex("name") + "$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "bankauth",
			OperationSuffix: "with-key",
		},
		Fields: map[string]*framework.FieldSchema{
			"name":   {Type: framework.TypeNameString, Required: true, Description: "Name of the key to sign with."},
			"format": {Type: framework.TypeString, Required: true, Description: "jws_detached or http_message_signature."},
			// jws_detached
			"payload": {Type: framework.TypeString, Description: "jws_detached: the payload, base64-encoded."},
			"b64": {Type: framework.TypeBool, Default: false,
				Description: "jws_detached: true signs the base64url-encoded payload (RFC 7515); false (default) the bytes as they are (RFC 7797), with b64 in crit."},
			"alg": {Type: framework.TypeString,
				Description: "jws_detached: the JWS algorithm. Default PS256 for RSA keys, ES256 for P-256, ES384 for P-384."},
			fieldSignHeader: {Type: framework.TypeString,
				Description: `jws_detached: a JSON object of further protected header members, e.g. {"typ":"JOSE","http://openbanking.org.uk/iat":1732870000}. typ is JOSE or absent; no jwk, jku, x5u, x5c or zip.`},
			"crit": {Type: framework.TypeCommaStringSlice, Description: "jws_detached: extension header member names to add to crit; never registered names such as typ."},
			// http_message_signature
			"method":     {Type: framework.TypeString, Description: "http_message_signature: the request method, e.g. POST."},
			"target_uri": {Type: framework.TypeString, Description: "http_message_signature: the full request URI."},
			fieldSignHeaders: {Type: framework.TypeString,
				Description: `http_message_signature: a JSON object of request headers to cover, e.g. {"x-request-id":"..."}.`},
			"body": {Type: framework.TypeString, Description: "http_message_signature: the request body, base64-encoded; its sha-256 Content-Digest is covered."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.sign,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "sign"}},
		},
		HelpSynopsis:    pathSignHelpSyn,
		HelpDescription: pathSignHelpDesc,
	}}
}

// sign signs with the latest version of a key; the caller never sees it.
func (b *backend) sign(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	k, resp, err := existingKey(ctx, req.Storage, name)
	if k == nil {
		return resp, err
	}
	if err := (keySigner{name, k}).Use().Require(bank.PurposeRequestSigning); err != nil {
		return logical.ErrorResponse("invalid name: %s", err.Error()), nil
	}
	switch format := d.Get("format").(string); format {
	case formatJWSDetached:
		resp, err = b.signJWS(k, d)
	case formatHTTPMsgSig:
		resp, err = b.signHTTPMessage(k, d)
	default:
		return logical.ErrorResponse("invalid format: must be %s or %s", formatJWSDetached, formatHTTPMsgSig), nil
	}
	var fe *keyring.FieldError
	if errors.As(err, &fe) {
		return logical.ErrorResponse("invalid %s: %s", fe.Field, fe.Msg), nil
	}
	return resp, err
}

func (b *backend) signJWS(k *keyring.Key, d *framework.FieldData) (*logical.Response, error) {
	raw, ok := d.GetOk("payload")
	if !ok {
		return nil, &keyring.FieldError{Field: "payload", Msg: "is required (base64)"}
	}
	payload, err := decodeBase64Field("payload", raw.(string))
	if err != nil {
		return nil, err
	}
	header, err := jsonObjectField(fieldSignHeader, d.Get(fieldSignHeader).(string))
	if err != nil {
		return nil, err
	}
	jws, kid, alg, err := k.SignDetachedJWS(payload, keyring.JWSOptions{
		Alg: d.Get("alg").(string), B64: d.Get("b64").(bool), Header: header, Crit: d.Get("crit").([]string)})
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"signature": jws, "kid": kid, "alg": alg}}, nil
}

func (b *backend) signHTTPMessage(k *keyring.Key, d *framework.FieldData) (*logical.Response, error) {
	body, err := decodeBase64Field("body", d.Get("body").(string))
	if err != nil {
		return nil, err
	}
	hdrs, err := jsonObjectField(fieldSignHeaders, d.Get(fieldSignHeaders).(string))
	if err != nil {
		return nil, err
	}
	headers := make(map[string]string, len(hdrs))
	for n, v := range hdrs {
		s, ok := v.(string)
		if !ok {
			return nil, &keyring.FieldError{Field: fieldSignHeaders, Msg: "values must be strings (" + n + " is not)"}
		}
		headers[n] = s
	}
	hs, err := k.SignHTTPMessage(keyring.HTTPMessage{Method: d.Get("method").(string),
		TargetURI: d.Get("target_uri").(string), Headers: headers, Body: body}, b.keys.clock())
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"content_digest":  hs.ContentDigest,
		"signature_input": hs.SignatureInput,
		"signature":       hs.Signature,
		"kid":             hs.KID,
		"alg":             hs.Alg,
	}}, nil
}

// decodeBase64Field reads standard or URL-safe base64, padded or not.
func decodeBase64Field(field, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxSignPayloadSize*4/3+4 {
		return nil, &keyring.FieldError{Field: field, Msg: "is larger than 4 MiB"}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if out, err := enc.DecodeString(s); err == nil {
			return out, nil
		}
	}
	return nil, &keyring.FieldError{Field: field, Msg: "must be base64"}
}

// jsonObjectField parses a field holding a JSON object ("" is none).
func jsonObjectField(field, s string) (map[string]any, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, &keyring.FieldError{Field: field, Msg: "must be a JSON object"}
	}
	return m, nil
}

const pathSignHelpSyn = `Sign with a key kept in Vault: detached JWS or HTTP message signature.`

const pathSignHelpDesc = `
The app that must sign a payment request never holds the key; a policy on
bankauth/sign/<key> (capability update) decides which keys it may use.

  vault write bankauth/sign/<key> format=jws_detached payload=<base64>
      [b64=false] [alg=PS256] [header='{"typ":"JOSE",...}'] [crit=a,b]

answers signature (a compact JWS with the payload detached,
<protected>..<signature>, as UK Open Banking's x-jws-signature takes it),
kid and alg. b64=false (the default) signs the payload bytes unencoded
(RFC 7797) and lists b64 in crit. A request signature is never a token:
a payload that is a JWT or DPoP claims set, a typ other than JOSE and a
key in the header are refused.

  vault write bankauth/sign/<key> format=http_message_signature method=POST
      target_uri=https://... headers='{"x-request-id":"..."}' body=<base64>

signs per RFC 9421 @method, @target-uri, each header named and
content-digest (RFC 9530, sha-256 of body), label sig1, with created and
keyid; it answers content_digest, signature_input and signature: send them
as the Content-Digest, Signature-Input and Signature headers. RSA keys sign
with rsa-pss-sha512, P-256 with ecdsa-p256-sha256, P-384 with
ecdsa-p384-sha384.
`
