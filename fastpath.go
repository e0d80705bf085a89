package bankauth

import (
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
)

// The fast path answers a plain read of token/<name> whose token is fresh in
// memory before the framework sees the request. Profiling the plugin inside
// Vault showed the framework spending, per request, a gRPC round trip to
// Vault (SystemView.ReplicationState, which it asks for any path defined with
// Operations, to decide forwarding; reads are never forwarded) plus route
// regexps and field parsing: about a third of the plugin's CPU for a cached
// read. Everything else (a stale or missing token, request parameters, other
// paths and operations) goes through the framework as before, and the answer
// is built by the same code either way.

// fastTokenRead returns the answer to req if it is a read of token/<name>
// or of a consent's token/<config>/<id> without parameters and the token is
// fresh in memory; nil otherwise.
func (b *backend) fastTokenRead(req *logical.Request) *logical.Response {
	if req.Operation != logical.ReadOperation || len(req.Data) != 0 || len(req.Path) <= len(tokenPrefix) ||
		req.Path[:len(tokenPrefix)] != tokenPrefix {
		return nil
	}
	name := req.Path[len(tokenPrefix):]
	if config, id, ok := strings.Cut(name, "/"); ok {
		if !isConfigName(config) || !isConfigName(id) {
			return nil
		}
		return b.cachedConsentResponse(config, id)
	}
	if !isConfigName(name) {
		return nil
	}
	return b.cachedTokenResponse(name)
}

// cachedTokenResponse is the answer from memory for a fresh token; nil when
// there is none. Both the fast path and tokenRead answer cache hits here.
func (b *backend) cachedTokenResponse(name string) *logical.Response {
	res, ok := b.broker.Cached(name)
	if !ok {
		return nil
	}
	return b.tokenResponse(res.Token, res.Lease)
}

// isConfigName reports whether s matches framework.GenericNameRegex, as the
// token path's pattern requires: word characters, with '-' and '.' allowed
// inside.
func isConfigName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		word := c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !word && ((c != '-' && c != '.') || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}
