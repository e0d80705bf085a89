package fapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

// DPoPSigner makes DPoP proofs (RFC 9449) with one key.
type DPoPSigner interface {
	// Proof is a proof for a request with method htm to htu, carrying the
	// server's nonce and, for a resource request, ath of accessToken
	// ("" for none).
	Proof(htm, htu, nonce, accessToken string) (string, error)
	// JKT is the key's RFC 7638 thumbprint, sent as dpop_jkt.
	JKT() string
}

// KeyDPoP is a DPoPSigner backed by a keyring key's latest version.
type KeyDPoP struct {
	Key *keyring.Key
	Now func() time.Time
}

// Proof implements DPoPSigner.
func (k KeyDPoP) Proof(htm, htu, nonce, accessToken string) (string, error) {
	return k.Key.DPoPProof(keyring.DPoPRequest{Method: htm, URL: htu, Nonce: nonce, AccessToken: accessToken}, k.Now())
}

// JKT implements DPoPSigner; it is "" when the key cannot be read.
func (k KeyDPoP) JKT() string {
	pub, err := k.Key.Latest().Public()
	if err != nil {
		return ""
	}
	t, err := keyring.Thumbprint(pub)
	if err != nil {
		return ""
	}
	return t
}

// Alg is the algorithm the key's proofs are signed with.
func (k KeyDPoP) Alg() string { return keyring.DefaultAlg(k.Key.Type) }

// nonceStore is the authorization server's latest DPoP-Nonce (RFC 9449
// section 8), sent in every later proof.
type nonceStore struct {
	mu    sync.Mutex
	nonce string
}

func (n *nonceStore) get() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nonce
}

func (n *nonceStore) set(v string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return
	}
	n.mu.Lock()
	n.nonce = v
	n.mu.Unlock()
}

// htu is a DPoP proof's htu: the endpoint without query and fragment
// (RFC 9449 section 4.2).
func htu(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String()
}

// isUseDPoPNonce reports whether a is RFC 9449 section 8's use_dpop_nonce
// challenge: 400 (or 401) with error=use_dpop_nonce and a DPoP-Nonce.
func isUseDPoPNonce(a *answer) bool {
	if a.status != http.StatusBadRequest && a.status != http.StatusUnauthorized {
		return false
	}
	if strings.TrimSpace(a.header.Get("DPoP-Nonce")) == "" {
		return false
	}
	var se serverError
	_ = json.Unmarshal(a.body, &se)
	return se.Error == "use_dpop_nonce" || strings.Contains(a.header.Get("WWW-Authenticate"), "use_dpop_nonce")
}
