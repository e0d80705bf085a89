package bankauth

import (
	"context"
	"sort"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathStatus(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "status/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "status",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {Type: framework.TypeNameString, Required: true, Description: "Name of the config whose health to show."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.statusRead,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"},
					Responses:    map[int][]framework.Response{200: {{Description: "OK", Fields: statusFields()}}}},
			},
			HelpSynopsis:    pathStatusHelpSyn,
			HelpDescription: pathStatusHelpDesc,
		},
		{
			Pattern: "status/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "statuses",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.statusList,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"}},
			},
			HelpSynopsis:    pathStatusListHelpSyn,
			HelpDescription: pathStatusListHelpDesc,
		},
	}
}

// statusFields documents what status/<name> returns (OpenAPI and path-help).
func statusFields() map[string]*framework.FieldSchema {
	f := func(t framework.FieldType, desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: t, Description: desc}
	}
	return map[string]*framework.FieldSchema{
		"name":                     f(framework.TypeString, "Config name."),
		"provider":                 f(framework.TypeString, "Bank protocol of the config."),
		"base_url":                 f(framework.TypeString, "Bank API base URL in use."),
		"token_cached":             f(framework.TypeBool, "Whether a token is stored and not yet expired (from storage, shared by all nodes)."),
		"token_expires_at":         f(framework.TypeString, "When the stored token expires, RFC 3339 UTC; null when none is stored."),
		"token_fresh_until":        f(framework.TypeString, "Until when the stored token is handed out; the next read after it fetches a new one."),
		"last_success_at":          f(framework.TypeString, "When the stored token was obtained: the last successful fetch on any node."),
		"has_refresh_token":        f(framework.TypeBool, "Whether the bank gave a refresh token with the stored token (never shown)."),
		"refresh_token_expires_at": f(framework.TypeString, "When the refresh token expires, if the bank said."),
		"last_error":               f(framework.TypeString, "The last failed fetch on this node as readers saw it: provider, step, HTTP status, bank code and message. Null if none since plugin start."),
		"last_error_at":            f(framework.TypeString, "When the last fetch failed, RFC 3339 UTC."),
		"last_error_provider":      f(framework.TypeString, "Provider of the last failed fetch."),
		"last_error_step":          f(framework.TypeString, "Step of the last failed fetch: code, token or refresh."),
		"last_error_http_status":   f(framework.TypeInt, "HTTP status the bank answered the last failed fetch with; 0 when no answer came."),
		"last_error_bank_code":     f(framework.TypeString, "The bank's own error code in that answer, if any."),
		"last_error_bank_message":  f(framework.TypeString, "The bank's own error message in that answer (or what went wrong)."),
		"bank_backoff_until":       f(framework.TypeString, "After a failed fetch this node asks the bank nothing before this time (RFC 3339 UTC); null when not backing off."),
		"bank_backoff_capped":      f(framework.TypeBool, "True when the bank's Retry-After asked for a longer wait than 15 minutes and bank_backoff_until was capped at that."),
		"consecutive_failures":     f(framework.TypeInt, "Token fetches failed in a row since the last success (this node)."),
		"fetch_failures":           f(framework.TypeInt, "Token fetches failed (this node, since plugin start)."),
		"bank_requests":            f(framework.TypeInt, "HTTP requests sent to the bank (this node, since plugin start)."),
		"cache_hits":               f(framework.TypeInt, "Token reads answered from memory (this node, since plugin start)."),
		"cache_misses":             f(framework.TypeInt, "Token reads that found no fresh token in memory (this node, since plugin start)."),
		"stale_served":             f(framework.TypeInt, "Token reads answered with a stale but unexpired token because the bank failed (this node, since plugin start)."),
		"counters_since":           f(framework.TypeString, "When the plugin started on this node: the counters above count from here."),
	}
}

func rfc3339(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// statusRead shows one config's health: what storage says about its token
// (shared by every node) and this node's counters. Never a secret or token.
func (b *backend) statusRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	cfg, err := readConfig(ctx, req.Storage, name)
	if err != nil || cfg == nil {
		return nil, err
	}
	tok, err := readToken(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	data := map[string]any{
		"name":                     name,
		"provider":                 cfg.Provider,
		"base_url":                 cfg.EffectiveBaseURL(),
		"token_cached":             false,
		"token_expires_at":         nil,
		"token_fresh_until":        nil,
		"last_success_at":          nil,
		"has_refresh_token":        false,
		"refresh_token_expires_at": nil,
		"counters_since":           rfc3339(b.started),
	}
	if tok != nil {
		data["token_cached"] = b.clock.Now().Before(tok.ExpiresAt)
		data["token_expires_at"] = rfc3339(tok.ExpiresAt)
		data["token_fresh_until"] = rfc3339(tok.StaleAt())
		data["last_success_at"] = rfc3339(tok.ObtainedAt)
		data["has_refresh_token"] = tok.RefreshToken != ""
		data["refresh_token_expires_at"] = rfc3339(tok.RefreshExpiresAt)
	}
	snap, _ := b.broker.Snapshot(name)
	data["bank_backoff_until"], data["bank_backoff_capped"] = nil, false
	if snap.BackoffUntil.After(b.clock.Now()) {
		data["bank_backoff_until"] = rfc3339(snap.BackoffUntil)
		data["bank_backoff_capped"] = bank.RetryCapped(snap.LastFailure)
	}
	for k, v := range statsData(&snap) {
		data[k] = v
	}
	if data["keys"], err = keyStatus(ctx, req.Storage, cfg, b.keys.clock()); err != nil { // key_status.go
		return nil, err
	}
	if cfg.IsAuthorizationCode() { // the issuer's metadata (config_authcode_meta.go)
		for k, v := range authServerData(cfg) {
			data[k] = v
		}
	}
	return &logical.Response{Data: data}, nil
}

// statsData renders a config's counters and last error.
func statsData(s *broker.Snapshot) map[string]any {
	data := map[string]any{
		"consecutive_failures":    s.ConsecutiveFailures,
		"fetch_failures":          s.FetchFailures,
		"bank_requests":           s.BankRequests,
		"cache_hits":              s.CacheHits,
		"cache_misses":            s.CacheMisses,
		"stale_served":            s.StaleServed,
		"last_error":              nil,
		"last_error_at":           nil,
		"last_error_provider":     nil,
		"last_error_step":         nil,
		"last_error_http_status":  nil,
		"last_error_bank_code":    nil,
		"last_error_bank_message": nil,
	}
	if fe := s.LastError; fe != nil {
		data["last_error"] = fe.Text
		data["last_error_at"] = rfc3339(fe.At)
		data["last_error_provider"] = fe.Provider
		data["last_error_step"] = fe.Step
		data["last_error_http_status"] = fe.Status
		data["last_error_bank_code"] = fe.BankCode
		data["last_error_bank_message"] = fe.BankMsg
	}
	return data
}

// statusList lists every config with this node's failure streak and last
// error time as key_info (vault list -detailed). It reads no token from
// storage, so it stays cheap with thousands of configs.
func (b *backend) statusList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, configPrefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	info := make(map[string]any, len(names))
	for _, name := range names {
		row := map[string]any{"consecutive_failures": int64(0), "bank_requests": uint64(0), "last_error_at": nil}
		if snap, ok := b.broker.Snapshot(name); ok {
			row["consecutive_failures"] = snap.ConsecutiveFailures
			row["bank_requests"] = snap.BankRequests
			if fe := snap.LastError; fe != nil {
				row["last_error_at"] = rfc3339(fe.At)
			}
		}
		info[name] = row
	}
	return logical.ListResponseWithInfo(names, info), nil
}

const pathStatusHelpSyn = `Health of one bank connection: its token, last error and counters.`

const pathStatusHelpDesc = `
Reading status/<name> shows, without any secret or token:

  from storage (the same on every Vault node):
    provider, base_url, token_cached, token_expires_at, token_fresh_until,
    last_success_at (when the stored token was obtained), has_refresh_token,
    refresh_token_expires_at
  from this node's memory, counted since the plugin started here
  (counters_since); a restart or plugin reload sets them back to zero:
    last_error (the sanitized text readers got, without the "config <name>:"
    prefix) with last_error_at,
    last_error_provider, last_error_step, last_error_http_status,
    last_error_bank_code, last_error_bank_message;
    consecutive_failures (failed fetches since the last success),
    bank_backoff_capped (the bank asked for a longer wait than 15 minutes:
    bank_backoff_until is 15 minutes after the failure instead),
    bank_backoff_until (after a failure the bank is left alone until then;
    reads meanwhile get the cached token while it is valid, or the error),
    fetch_failures, bank_requests (HTTP requests to the bank),
    cache_hits (reads answered from memory), cache_misses (reads that found
    no fresh token in memory; they may still be served from storage or by
    another reader's fetch), stale_served (reads given a stale, unexpired
    token while the bank failed).

A config with grant_type=authorization_code also shows its issuer's
metadata: metadata_fetched_at (the document in use; null when every
endpoint is set by hand), metadata_checked_at (the last fetch, applied or
not), metadata_pending_change (endpoints a refresh would move to another
host: held back until an operator rewrites the config), metadata_refresh_error
and endpoints_set_by_hand.

A missing config gives no value (404).
`

const pathStatusListHelpSyn = `List every bank connection with its failure streak.`

const pathStatusListHelpDesc = `
Lists config names; vault list -detailed also shows, per name, this node's
consecutive_failures, bank_requests and last_error_at. Read status/<name>
for the details.
`
