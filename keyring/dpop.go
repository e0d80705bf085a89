package keyring

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
)

// DPoPRequest is the request a DPoP proof (RFC 9449) is made for.
type DPoPRequest struct {
	Method string // htm
	URL    string // htu; its query and fragment are dropped
	// AccessToken, when set, is bound by ath = base64url(SHA-256(token)):
	// a proof for a resource request.
	AccessToken string
	// Nonce is the server's latest DPoP-Nonce, if it gave one.
	Nonce string
}

// dpopClaims are RFC 9449 section 4.2's claims.
type dpopClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce,omitempty"`
	ATH   string `json:"ath,omitempty"`
}

// Check reports, as a *FieldError naming htm or htu, whether the request
// is one a proof can be made for: an upper-case method and an absolute
// http(s) URL. Callers that must do work before signing check first.
func (r DPoPRequest) Check() error {
	if r.Method == "" || strings.ToUpper(r.Method) != r.Method || strings.ContainsAny(r.Method, " \t\r\n") {
		return &FieldError{Field: "htm", Msg: "must be an upper-case HTTP method such as POST"}
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &FieldError{Field: "htu", Msg: "must be an absolute http(s) URL"}
	}
	return nil
}

// DPoPProof makes a DPoP proof JWT signed by the latest version: header
// typ dpop+jwt, the key type's default alg and the public JWK; claims htm,
// htu, iat (now), a fresh random jti, and nonce and ath when given. Errors
// are *FieldError naming htm or htu.
func (k *Key) DPoPProof(r DPoPRequest, now time.Time) (string, error) {
	if err := r.Check(); err != nil {
		return "", err
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return "", &FieldError{Field: "htu", Msg: "must be an absolute http(s) URL"}
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	v := k.Latest()
	pub, err := v.Public()
	if err != nil {
		return "", err
	}
	jwk, err := bareJWK(pub)
	if err != nil {
		return "", err
	}
	alg := DefaultAlg(k.Type)
	hdr, err := json.Marshal(struct {
		Typ string `json:"typ"`
		Alg string `json:"alg"`
		JWK JWK    `json:"jwk"`
	}{"dpop+jwt", alg, jwk})
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", errors.New("no randomness for jti")
	}
	c := dpopClaims{JTI: b64.EncodeToString(jti), HTM: r.Method, HTU: u.String(), IAT: now.Unix(), Nonce: r.Nonce}
	if r.AccessToken != "" {
		sum := sha256.Sum256([]byte(r.AccessToken))
		c.ATH = b64.EncodeToString(sum[:])
	}
	claims, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return v.signCompact(alg, hdr, claims)
}
