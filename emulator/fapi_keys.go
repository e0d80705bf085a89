package emulator

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fapiAlgs are the JWS algorithms the FAPI 2.0 Security Profile allows
// (section 5.4), accepted for client assertions and DPoP proofs.
var fapiAlgs = []jose.SignatureAlgorithm{jose.PS256, jose.ES256, jose.EdDSA}

func fapiAlgNames() []string {
	out := make([]string, len(fapiAlgs))
	for i, a := range fapiAlgs {
		out[i] = string(a)
	}
	return out
}

// newFAPISigner makes the server's ES256 key, which signs ID tokens and
// access tokens; its kid is its RFC 7638 thumbprint.
func newFAPISigner() (*ecdsa.PrivateKey, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("emulator: no randomness for the FAPI signing key: " + err.Error())
	}
	tp, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		panic("emulator: cannot compute the FAPI key's thumbprint: " + err.Error())
	}
	return key, base64.RawURLEncoding.EncodeToString(tp)
}

// fapiSign signs claims as a JWT with the server's key, header typ.
func (s *Server) fapiSign(typ string, claims any) (string, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(jose.HeaderKey("kid"), s.fapi.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.fapi.signer}, opts)
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// fapiJWKS serves GET FAPIJWKSPath: the server's public key.
func (s *Server) fapiJWKS(w http.ResponseWriter, r *http.Request, _ []byte) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.fapi.signer.PublicKey, KeyID: s.fapi.kid,
		Algorithm: string(jose.ES256), Use: "sig"}}}
	b, err := json.Marshal(set)
	if err != nil {
		s.fail(w, FAPI, http.StatusInternalServerError, "server_error", "cannot encode the JWK Set")
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(b)
}

// parseClientJWKS reads a client's JWK Set: public signing keys only.
func parseClientJWKS(raw []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, errors.New("not a JWK Set")
	}
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if !k.Valid() {
			continue
		}
		if !k.IsPublic() {
			return nil, errors.New("the JWK Set holds a private key")
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("the JWK Set has no public signing key")
	}
	return out, nil
}

// newFAPIClient checks a registration and makes the client.
func newFAPIClient(c FAPIClient) (*fapiClient, error) {
	if c.ID == "" {
		return nil, errors.New("client_id is required")
	}
	if len(c.RedirectURIs) == 0 {
		return nil, errors.New("redirect_uris must list at least one URI")
	}
	for _, ru := range c.RedirectURIs {
		u, err := url.Parse(ru)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
			return nil, fmt.Errorf("redirect URI %q is not an absolute URL without fragment", ru)
		}
	}
	fc := &fapiClient{FAPIClient: c}
	fc.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	if len(c.JWKS) > 0 {
		keys, err := parseClientJWKS(c.JWKS)
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		fc.keys, fc.fetched = keys, true
		fc.JWKSURI = ""
	} else if c.JWKSURI != "" {
		u, err := url.Parse(c.JWKSURI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("jwks_uri must be an absolute http(s) URL")
		}
	}
	return fc, nil
}

// jwksFetcher fetches clients' jwks_uri: no redirects, a short timeout.
var jwksFetcher = &http.Client{Timeout: 5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// clientKeys returns the client's keys. A jwks_uri is fetched when the
// keys were never fetched, are older than fapiJWKSMaxAge, or (when
// unknownKid) a token names a kid the cached set lacks and the last fetch
// is at least fapiJWKSRefetch old.
func (s *Server) clientKeys(ctx context.Context, c *fapiClient, unknownKid bool) ([]jose.JSONWebKey, error) {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	now := s.now()
	if c.JWKSURI == "" {
		if !c.fetched {
			return nil, errors.New("the client has no keys registered (neither jwks nor jwks_uri)")
		}
		return c.keys, nil
	}
	age := now.Sub(c.fetchedAt)
	if c.fetched && age < fapiJWKSMaxAge && (!unknownKid || age < fapiJWKSRefetch) {
		return c.keys, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.JWKSURI, nil)
	if err != nil {
		return nil, errors.New("the client's jwks_uri is not usable")
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	res, err := jwksFetcher.Do(req)
	if err != nil {
		return c.stale("the client's jwks_uri cannot be fetched")
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil || res.StatusCode != http.StatusOK {
		return c.stale(fmt.Sprintf("the client's jwks_uri answered HTTP %d", res.StatusCode))
	}
	keys, err := parseClientJWKS(body)
	if err != nil {
		return c.stale("the client's jwks_uri: " + err.Error())
	}
	c.keys, c.fetchedAt, c.fetched = keys, now, true
	return keys, nil
}

// stale returns the keys fetched earlier, if any, when a fetch fails.
func (c *fapiClient) stale(msg string) ([]jose.JSONWebKey, error) {
	if c.fetched {
		return c.keys, nil
	}
	return nil, errors.New(msg)
}

// pickKeys are the keys among keys that may verify a signature with alg
// and, when kid is set, that kid.
func pickKeys(keys []jose.JSONWebKey, kid string, alg jose.SignatureAlgorithm) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(alg) {
			continue
		}
		out = append(out, k)
	}
	return out
}
