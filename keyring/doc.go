// Package keyring holds signing keys that are born and kept inside Vault:
// generation (RSA 2048/3072/4096, EC P-256/P-384) or a one-time PEM import,
// versions with a minimum published version, RFC 7638 thumbprint key IDs,
// public JWKs and JWK Sets (RFC 7517, with x5c once a certificate is
// attached), certificate signing requests, attached certificate chains, and
// the signatures open-banking APIs ask of a client: detached compact JWS
// (RFC 7515 appendix F, RFC 7797), HTTP message signatures (RFC 9421 with
// an RFC 9530 Content-Digest) and DPoP proofs (RFC 9449).
//
// It knows nothing of Vault: the plugin stores a Key as JSON in seal-wrapped
// storage and calls these functions. Private key material never appears in
// an error, and a Key's private parts print as "<redacted>".
package keyring
