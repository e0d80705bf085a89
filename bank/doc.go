// Package bank is bankauth's Vault-free client of the banks: it knows how to ask
// each bank's token endpoint for an access token, how to read the bank's
// answer (success or error), and when a token is due for replacement.
// Client.Fetch retries transient failures within the config's timeout
// (retry.go) and keeps to the config's request Budget (budget.go). Every
// HTTP round trip is logged and reported to the client's Observer in one
// place (observe.go), with its step, status, latency and attempt.
//
// Nothing here imports Vault. The Vault backend in the root package stores
// Config and Token values; package broker decides when to call Client.Fetch.
package bank
