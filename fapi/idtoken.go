package fapi

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultSkew is the clock skew allowed on exp and iat.
const DefaultSkew = 30 * time.Second

// Checks an IDTokenError names.
const (
	CheckAlg       = "alg"
	CheckSignature = "signature"
	CheckIssuer    = "iss"
	CheckAudience  = "aud"
	CheckAZP       = "azp"
	CheckExpiry    = "exp"
	CheckIssuedAt  = "iat"
	CheckNonce     = "nonce"
	CheckSubject   = "sub"
)

// IDTokenError is an ID token that fails a check; Check names which.
type IDTokenError struct {
	Check string
	Msg   string
}

// Error implements error.
func (e *IDTokenError) Error() string { return "id_token: " + e.Check + ": " + e.Msg }

// IDTokenCheck is what an ID token must match.
type IDTokenCheck struct {
	Issuer   string
	ClientID string
	// Nonce is the attempt's nonce, which the token must carry. With
	// NonceOptional (an ID token from a refresh) a token without nonce
	// passes, and one with a nonce must carry Nonce.
	Nonce         string
	NonceOptional bool
	// Algs are the algorithms accepted; nil means FAPI2Algs.
	Algs []string
	// Skew is the clock skew allowed on exp and iat; 0 means DefaultSkew.
	Skew time.Duration
	Now  time.Time
}

// IDTokenClaims are the claims of a validated ID token.
type IDTokenClaims struct {
	Issuer          string
	Subject         string
	Audience        []string
	AuthorizedParty string
	IssuedAt        time.Time
	Expiry          time.Time
	AuthTime        time.Time // zero when absent
	ACR             string
}

// extraClaims are the OpenID Connect claims go-jose's jwt.Claims lacks.
type extraClaims struct {
	Nonce    string           `json:"nonce"`
	AZP      string           `json:"azp"`
	AuthTime *jwt.NumericDate `json:"auth_time"`
	ACR      string           `json:"acr"`
}

// ValidateIDToken checks an ID token (OpenID Connect Core section 3.1.3.7):
// alg in the accepted set, the signature by the key keys holds for its kid,
// iss equal to the issuer, aud containing the client ID (and azp equal to
// it when aud has several values or azp is present), exp not passed and
// iat not in the future (both within the skew), sub present, and nonce
// equal to the attempt's (constant time).
func ValidateIDToken(ctx context.Context, raw string, keys *JWKS, c IDTokenCheck) (*IDTokenClaims, error) {
	algs := c.Algs
	if algs == nil {
		algs = FAPI2Algs
	}
	skew := c.Skew
	if skew <= 0 {
		skew = DefaultSkew
	}
	if strings.Count(raw, ".") != 2 {
		return nil, &IDTokenError{Check: CheckMalformed, Msg: "not a compact JWS"}
	}
	allowed := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		allowed[i] = jose.SignatureAlgorithm(a)
	}
	hdr, err := peekHeader(raw)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(algs, hdr.Alg) {
		return nil, &IDTokenError{Check: CheckAlg, Msg: "signed with " + quoteAlg(hdr.Alg) + ", not one of " + strings.Join(algs, ", ")}
	}
	tok, err := jwt.ParseSigned(raw, allowed)
	if err != nil || len(tok.Headers) != 1 {
		return nil, &IDTokenError{Check: CheckMalformed, Msg: "cannot be parsed as a signed JWT"}
	}
	key, err := keys.Key(ctx, tok.Headers[0].KeyID, hdr.Alg, c.Now)
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var ex extraClaims
	if err := tok.Claims(key, &std, &ex); err != nil {
		return nil, &IDTokenError{Check: CheckSignature, Msg: "the signature does not verify with the authorization server's key"}
	}
	if std.Issuer != c.Issuer {
		return nil, &IDTokenError{Check: CheckIssuer, Msg: "iss is not the configured issuer " + c.Issuer}
	}
	if !slices.Contains([]string(std.Audience), c.ClientID) {
		return nil, &IDTokenError{Check: CheckAudience, Msg: "aud does not contain the client ID " + c.ClientID}
	}
	if (len(std.Audience) > 1 || ex.AZP != "") && ex.AZP != c.ClientID {
		return nil, &IDTokenError{Check: CheckAZP, Msg: "azp is not the client ID " + c.ClientID}
	}
	if std.Expiry == nil {
		return nil, &IDTokenError{Check: CheckExpiry, Msg: "exp is missing"}
	}
	if !c.Now.Before(std.Expiry.Time().Add(skew)) {
		return nil, &IDTokenError{Check: CheckExpiry, Msg: "expired at " + std.Expiry.Time().UTC().Format(time.RFC3339)}
	}
	if std.IssuedAt == nil {
		return nil, &IDTokenError{Check: CheckIssuedAt, Msg: "iat is missing"}
	}
	if std.IssuedAt.Time().After(c.Now.Add(skew)) {
		return nil, &IDTokenError{Check: CheckIssuedAt, Msg: "issued in the future"}
	}
	if std.Subject == "" {
		return nil, &IDTokenError{Check: CheckSubject, Msg: "sub is missing"}
	}
	switch {
	case c.Nonce == "" && !c.NonceOptional:
		return nil, &IDTokenError{Check: CheckNonce, Msg: "no nonce to compare with"}
	case c.Nonce == "" || (c.NonceOptional && ex.Nonce == ""):
	case !StateEqual(ex.Nonce, c.Nonce):
		return nil, &IDTokenError{Check: CheckNonce, Msg: "nonce is not the attempt's"}
	}
	out := &IDTokenClaims{Issuer: std.Issuer, Subject: std.Subject, Audience: std.Audience, AuthorizedParty: ex.AZP,
		IssuedAt: std.IssuedAt.Time(), Expiry: std.Expiry.Time(), ACR: ex.ACR}
	if ex.AuthTime != nil {
		out.AuthTime = ex.AuthTime.Time()
	}
	return out, nil
}

// joseHeader is what ValidateIDToken reads of the header before parsing.
type joseHeader struct {
	Alg string `json:"alg"`
}

func peekHeader(raw string) (joseHeader, error) {
	var h joseHeader
	seg := raw[:strings.IndexByte(raw, '.')]
	b, err := b64.DecodeString(seg)
	if err != nil || json.Unmarshal(b, &h) != nil {
		return h, &IDTokenError{Check: CheckMalformed, Msg: "the header is not base64url JSON"}
	}
	return h, nil
}
