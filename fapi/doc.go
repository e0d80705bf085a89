// Package fapi is bankauth's Vault-free client of an OAuth 2.0 authorization
// server for user consents, following the FAPI 2.0 Security Profile:
// discovery (RFC 8414, OpenID Connect Discovery) with an exact issuer check,
// a profile check of a client configuration (CheckFAPI2), PKCE S256
// (RFC 7636), pushed authorization requests (RFC 9126) with DPoP key binding
// (RFC 9449), the authorization response checks (state, RFC 9207 iss,
// expiry), the authorization code and refresh token grants, revocation
// (RFC 7009) and ID token validation against the server's JWK Set.
//
// Every request goes through the *http.Client the caller gives (the
// plugin's egress-controlled client); nothing here uses
// http.DefaultClient. Time is always passed in (a Now function or a time
// argument). No error string carries a code, verifier, state, nonce,
// token, client assertion or DPoP proof: errors name the step, the HTTP
// status and the server's error and error_description.
//
// Nothing here imports Vault: the plugin's consent/ and token/ paths store
// an Attempt and a Token and call these functions.
package fapi
