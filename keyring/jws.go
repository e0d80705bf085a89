package keyring

import (
	"encoding/json"
	"fmt"
	"slices"
)

// JWSOptions shape a detached JWS.
type JWSOptions struct {
	// Alg is the JWS algorithm; "" picks the key type's default.
	Alg string
	// B64 true signs the base64url-encoded payload (plain RFC 7515);
	// false, the default, signs the payload bytes as they are (RFC 7797)
	// and lists "b64" in "crit".
	B64 bool
	// Header holds further protected header members (typ, cty,
	// http://openbanking.org.uk/iat, ...). alg, kid, b64 and crit are set
	// here and may not be given.
	Header map[string]any
	// Crit names header members the recipient must understand; each must
	// be in Header.
	Crit []string
}

// reservedHeader are members SignDetachedJWS sets itself.
var reservedHeader = map[string]bool{"alg": true, "kid": true, "b64": true, "crit": true}

// SignDetachedJWS signs payload with the latest version and returns a
// compact JWS with the payload detached (RFC 7515 appendix F):
// "<protected>..<signature>", with the version's kid and the algorithm
// used. Errors are *FieldError naming alg, header, crit or payload: what
// would make it a JWT or a DPoP proof is refused (checkJWSRequest).
func (k *Key) SignDetachedJWS(payload []byte, o JWSOptions) (jws, kid, alg string, err error) {
	alg = o.Alg
	if alg == "" {
		alg = DefaultAlg(k.Type)
	}
	if err := checkAlg(k.Type, alg); err != nil {
		return "", "", "", &FieldError{Field: "alg", Msg: err.Error()}
	}
	if err := checkJWSRequest(payload, o); err != nil {
		return "", "", "", err
	}
	v := k.Latest()
	hdr := map[string]any{}
	for name, val := range o.Header {
		if reservedHeader[name] {
			return "", "", "", &FieldError{Field: "header", Msg: fmt.Sprintf("may not set %q: the plugin sets it", name)}
		}
		hdr[name] = val
	}
	crit := []string{}
	if !o.B64 {
		hdr["b64"] = false
		crit = append(crit, "b64")
	}
	for _, c := range o.Crit {
		if c == "b64" && !o.B64 {
			continue
		}
		if _, ok := o.Header[c]; !ok {
			return "", "", "", &FieldError{Field: "crit", Msg: "must name only members of header"}
		}
		if !slices.Contains(crit, c) {
			crit = append(crit, c)
		}
	}
	if len(crit) > 0 {
		hdr["crit"] = crit
	}
	hdr["alg"], hdr["kid"] = alg, v.KID
	protected, err := json.Marshal(hdr)
	if err != nil {
		return "", "", "", &FieldError{Field: "header", Msg: "cannot be encoded as JSON"}
	}
	enc := b64.EncodeToString(protected)
	input := []byte(enc + ".")
	if o.B64 {
		input = append(input, b64.EncodeToString(payload)...)
	} else {
		input = append(input, payload...)
	}
	signer, err := v.Signer()
	if err != nil {
		return "", "", "", err
	}
	sig, err := signRaw(signer, jwsSchemes[alg], input)
	if err != nil {
		return "", "", "", err
	}
	return enc + ".." + b64.EncodeToString(sig), v.KID, alg, nil
}
