package bank

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
)

// dpopState is a client's DPoP state: the latest nonce the bank gave
// (RFC 9449 section 8), sent in every later proof.
type dpopState struct {
	mu    sync.Mutex
	nonce string
}

func (d *dpopState) get() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nonce
}

func (d *dpopState) set(n string) {
	if n == "" {
		return
	}
	d.mu.Lock()
	d.nonce = n
	d.mu.Unlock()
}

// errUseDPoPNonce is a token request the bank refused for want of its
// nonce, which is now known: the request is worth one more try.
var errUseDPoPNonce = errors.New("use_dpop_nonce")

// withDPoP adds a fresh DPoP proof for x to a copy of x when the config
// names a dpop_key.
func (c *Client) withDPoP(x exchange) (exchange, error) {
	k := c.cfg.keys.DPoP
	if k == nil {
		return x, nil
	}
	target := x.url
	if target == "" {
		target = c.baseURL + x.path
	}
	proof, err := k.DPoPProof(x.method, target, c.dpop.get(), "", c.now())
	if err != nil {
		return x, err
	}
	h := make(http.Header, len(x.header)+1)
	for name, v := range x.header {
		h[name] = v
	}
	h["DPoP"] = []string{proof}
	x.header = h
	return x, nil
}

// noteDPoPNonce keeps the bank's DPoP-Nonce and says whether the answer
// is RFC 9449's use_dpop_nonce error.
func (c *Client) noteDPoPNonce(a *answer) bool {
	if c.cfg.keys.DPoP == nil || a == nil {
		return false
	}
	nonce := strings.TrimSpace(a.header.Get("DPoP-Nonce"))
	c.dpop.set(nonce)
	if nonce == "" || (a.status != http.StatusBadRequest && a.status != http.StatusUnauthorized) {
		return false
	}
	var body struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(a.body, &body)
	return body.Error == "use_dpop_nonce" || strings.Contains(a.header.Get("WWW-Authenticate"), "use_dpop_nonce")
}

// DPoPNonce returns the latest DPoP nonce the bank gave this client ("" if
// none).
func (c *Client) DPoPNonce() string { return c.dpop.get() }

// SetDPoPNonce makes n, a nonce an earlier client of the same config
// learned, the one the client's proofs carry until the bank gives another.
func (c *Client) SetDPoPNonce(n string) { c.dpop.set(n) }

// DPoPProof makes a proof for a resource request with the config's
// dpop_key: ath binds accessToken; nonce is the resource server's, or ""
// for the latest nonce the token endpoint gave. It fails when the config
// names no dpop_key.
func (c *Client) DPoPProof(htm, htu, accessToken, nonce string) (string, error) {
	k := c.cfg.keys.DPoP
	if k == nil {
		return "", fieldErr(FieldDPoPKey, "is not set on this config")
	}
	if nonce == "" {
		nonce = c.dpop.get()
	}
	return k.DPoPProof(htm, htu, nonce, accessToken, c.now())
}
