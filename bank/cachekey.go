package bank

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
)

// CacheKey identifies what a token was obtained for: the provider (and its
// profile, for one an operator wrote), base URL, CA and client
// certificate, every non-secret setting (scope, client_id, user_id, ...)
// and oauth_metadata. A token whose key differs from its config's is not
// served. Secret values are left out on purpose: a hash of a password is
// guessable offline, and changing a secret through config/<name> drops the
// token anyway.
func (c *Config) CacheKey() string {
	type kv struct{ K, V string }
	var settings []kv
	for k, v := range c.Settings {
		settings = append(settings, kv{k, v})
	}
	sort.Slice(settings, func(i, j int) bool { return settings[i].K < settings[j].K })
	var profile string
	if p, ok := c.Lookup(); ok {
		if pp, ok := p.(*profileProvider); ok {
			profile = pp.digest
		}
	}
	doc, _ := json.Marshal(struct {
		Provider, BaseURL, CACert, TLSClientCert string
		Settings                                 []kv
		Metadata                                 map[string]any
		Profile                                  string
	}{c.Provider, c.EffectiveBaseURL(), c.CACert, c.TLSClientCert, settings, c.OAuthMetadata, profile})
	if k := c.keys.DPoP; k != nil {
		// A DPoP-bound token is bound to the key version that signed its
		// proof: after a rotation it is not served again. (Appended only
		// here, so keys of configs without dpop_key do not change.)
		doc = append(doc, "\x00dpop:"+k.KID()...)
	}
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:16])
}

// stamp records on tok the key of the config it was obtained for.
func (c *Client) stamp(tok *Token) *Token {
	tok.ConfigKey = c.cfg.CacheKey()
	return tok
}
