package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// clientAssertionType is RFC 7523 section 2.2's client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionClaims are what the server reads of a client assertion.
type assertionClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"`
	ID        string          `json:"jti"`
	Expiry    *json.Number    `json:"exp"`
	IssuedAt  *json.Number    `json:"iat"`
	NotBefore *json.Number    `json:"nbf"`
}

// numericDate reads a JWT NumericDate (RFC 7519 section 2).
func numericDate(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// fapiAuthenticate checks private_key_jwt client authentication (RFC 7523
// sections 2.2 and 3, RFC 7521 section 4.2): the assertion is signed with
// one of the client's keys by PS256, ES256 or EdDSA; iss and sub are the
// client ID (and client_id, when sent, too); aud is the issuer identifier
// as a single string (FAPI 2.0 Security Profile section 5.3.2.1); exp is
// present, not passed and at most fapiAssertionMax ahead; iat and nbf are
// not in the future; jti is present and has not been seen before.
func (s *Server) fapiAuthenticate(r *http.Request, form url.Values, issuer string) (*fapiClient, *fapiError) {
	if r.Header.Get("Authorization") != "" || form.Has("client_secret") {
		return nil, invalidClient("only private_key_jwt client authentication is supported")
	}
	if form.Get("client_assertion_type") != clientAssertionType {
		return nil, invalidClient("client_assertion_type must be " + clientAssertionType)
	}
	raw := form.Get("client_assertion")
	if raw == "" {
		return nil, invalidClient("client_assertion is missing")
	}
	jws, err := jose.ParseSignedCompact(raw, fapiAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, invalidClient("client_assertion is not a compact JWS signed with PS256, ES256 or EdDSA")
	}
	var c assertionClaims
	dec := json.NewDecoder(bytes.NewReader(jws.UnsafePayloadWithoutVerification()))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, invalidClient("client_assertion's claims are not a JSON object")
	}
	if c.Issuer == "" || c.Subject != c.Issuer {
		return nil, invalidClient("client_assertion's iss and sub must both be the client ID")
	}
	if id := form.Get("client_id"); id != "" && id != c.Issuer {
		return nil, invalidClient("client_id is not the client_assertion's iss")
	}
	s.fapi.mu.Lock()
	client := s.fapi.clients[c.Issuer]
	s.fapi.mu.Unlock()
	if client == nil {
		return nil, invalidClient("unknown client")
	}
	if !s.verifyAssertion(r, client, jws) {
		return nil, invalidClient("client_assertion's signature does not verify with the client's keys")
	}
	var aud string
	if json.Unmarshal(c.Audience, &aud) != nil || aud != issuer {
		return nil, invalidClient("client_assertion's aud must be the issuer identifier " + issuer + " as a string")
	}
	now := s.now()
	exp, ok := numericDate(c.Expiry)
	switch {
	case !ok:
		return nil, invalidClient("client_assertion has no exp")
	case !now.Before(exp.Add(fapiSkew)):
		return nil, invalidClient("client_assertion has expired")
	case exp.After(now.Add(fapiAssertionMax + fapiSkew)):
		return nil, invalidClient("client_assertion's exp is too far in the future")
	}
	if iat, ok := numericDate(c.IssuedAt); c.IssuedAt != nil && (!ok || iat.After(now.Add(fapiSkew))) {
		return nil, invalidClient("client_assertion's iat is in the future")
	}
	if nbf, ok := numericDate(c.NotBefore); c.NotBefore != nil && (!ok || nbf.After(now.Add(fapiSkew))) {
		return nil, invalidClient("client_assertion is not valid yet (nbf)")
	}
	if c.ID == "" || len(c.ID) > 256 {
		return nil, invalidClient("client_assertion has no usable jti")
	}
	key := client.ID + "\x00" + c.ID
	s.fapi.mu.Lock()
	defer s.fapi.mu.Unlock()
	if _, seen := s.fapi.assertions[key]; seen {
		return nil, invalidClient("client_assertion's jti has been used before")
	}
	s.fapi.assertions[key] = exp.Add(fapiSkew)
	return client, nil
}

// verifyAssertion checks the signature with the client's keys, fetching
// its jwks_uri again once when no cached key verifies.
func (s *Server) verifyAssertion(r *http.Request, client *fapiClient, jws *jose.JSONWebSignature) bool {
	hdr := jws.Signatures[0].Protected
	alg := jose.SignatureAlgorithm(hdr.Algorithm)
	for try := 0; try < 2; try++ {
		keys, err := s.clientKeys(r.Context(), client, try > 0)
		if err != nil {
			return false
		}
		for _, k := range pickKeys(keys, hdr.KeyID, alg) {
			if _, err := jws.Verify(&k); err == nil {
				return true
			}
		}
		if client.JWKSURI == "" {
			return false
		}
	}
	return false
}
