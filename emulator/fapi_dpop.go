package emulator

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// dpopClaims are a DPoP proof's claims (RFC 9449 section 4.2).
type dpopClaims struct {
	JTI   string       `json:"jti"`
	HTM   string       `json:"htm"`
	HTU   string       `json:"htu"`
	IAT   *json.Number `json:"iat"`
	Nonce string       `json:"nonce"`
	ATH   string       `json:"ath"`
}

// currentNonce is the DPoP nonce to hand out, a fresh one every
// fapiNonceRotate; called with mu held.
func (st *fapiState) currentNonce(now time.Time) string {
	if st.nonce == "" || now.Sub(st.nonceAt) >= fapiNonceRotate || now.Before(st.nonceAt) {
		st.nonce, st.nonceAt = randString(24), now
		st.nonces[st.nonce] = now
	}
	return st.nonce
}

// setDPoPNonce adds the current DPoP nonce to an answer (RFC 9449 section 8.2).
func (s *Server) setDPoPNonce(w http.ResponseWriter) {
	s.fapi.mu.Lock()
	defer s.fapi.mu.Unlock()
	if !s.fapi.noNonce {
		w.Header().Set("DPoP-Nonce", s.fapi.currentNonce(s.now()))
	}
}

func invalidProof(desc string) *fapiError { return badRequest("invalid_dpop_proof", desc) }

// fapiCheckDPoP checks the request's DPoP proof (RFC 9449 section 4.3) and
// returns its key's RFC 7638 thumbprint, or "" when the request has no
// proof and required is false. The proof is one JWS in one DPoP header,
// typ dpop+jwt, signed by PS256, ES256 or EdDSA with the public key in its
// jwk header; htm and htu match the request (htu as the issuer's base URL
// sees it); iat is within fapiProofWindow; jti has not been seen for the
// key; and, unless nonces are off, nonce is one the server handed out
// (else a use_dpop_nonce challenge, section 8). With an accessToken (a
// resource request, section 7), ath must be its hash.
func (s *Server) fapiCheckDPoP(r *http.Request, required bool, accessToken string) (string, *fapiError) {
	vals := r.Header.Values("DPoP")
	switch {
	case len(vals) == 0 && !required:
		return "", nil
	case len(vals) == 0:
		return "", badRequest("invalid_dpop_proof", "a DPoP proof is required")
	case len(vals) > 1:
		return "", invalidProof("more than one DPoP header")
	}
	jws, err := jose.ParseSignedCompact(vals[0], fapiAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return "", invalidProof("the DPoP proof is not a compact JWS signed with PS256, ES256 or EdDSA")
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return "", invalidProof("the DPoP proof's typ must be dpop+jwt")
	}
	jwk := hdr.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return "", invalidProof("the DPoP proof's jwk header must be a public key")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return "", invalidProof("the DPoP proof's signature does not verify with its jwk")
	}
	var c dpopClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return "", invalidProof("the DPoP proof's claims are not a JSON object")
	}
	if c.HTM != r.Method {
		return "", invalidProof("the DPoP proof's htm is not the request's method")
	}
	if !sameURL(c.HTU, s.fapiBase(r)+r.URL.Path) {
		return "", invalidProof("the DPoP proof's htu is not the request's URL")
	}
	now := s.now()
	iat, ok := numericDate(c.IAT)
	if !ok || iat.Before(now.Add(-fapiProofWindow)) || iat.After(now.Add(fapiProofWindow)) {
		return "", invalidProof("the DPoP proof's iat is missing or not within 60 seconds of the server's time")
	}
	if accessToken != "" && c.ATH != accessTokenHash(accessToken) {
		return "", invalidProof("the DPoP proof's ath is not the access token's hash")
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return "", invalidProof("the DPoP proof has no usable jti")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", invalidProof("the DPoP proof's jwk has no thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	s.fapi.mu.Lock()
	defer s.fapi.mu.Unlock()
	if !s.fapi.noNonce {
		if at, known := s.fapi.nonces[c.Nonce]; c.Nonce == "" || !known || now.Sub(at) >= fapiNonceLife {
			return "", &fapiError{status: http.StatusBadRequest, code: "use_dpop_nonce",
				desc: "the authorization server requires a nonce in the DPoP proof", nonceNeeded: true}
		}
	}
	key := jkt + "\x00" + c.JTI
	if _, seen := s.fapi.proofs[key]; seen {
		return "", invalidProof("the DPoP proof's jti has been used before")
	}
	s.fapi.proofs[key] = iat.Add(2 * fapiProofWindow)
	return jkt, nil
}

// accessTokenHash is a DPoP proof's ath for an access token.
func accessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
