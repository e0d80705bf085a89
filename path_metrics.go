package bankauth

import (
	"context"
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// publicMetricsPath serves the metrics without a Vault token, when the
// mount's settings allow it. It is listed in PathsSpecial.Unauthenticated,
// which Vault reads once when it mounts the plugin, so the opt-in is a
// stored setting checked on every request rather than a change to that list.
const publicMetricsPath = "metrics/public"

func pathMetrics(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "metrics$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "metrics",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.metricsRead,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
			},
			HelpSynopsis:    pathMetricsHelpSyn,
			HelpDescription: pathMetricsHelpDesc,
		},
		{
			Pattern: publicMetricsPath + "$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "bankauth",
				OperationSuffix: "public-metrics",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.publicMetricsRead,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
			},
			HelpSynopsis:    pathPublicMetricsHelpSyn,
			HelpDescription: pathPublicMetricsHelpDesc,
		},
	}
}

// metricsRead answers with the Prometheus text format as a raw HTTP body,
// the way Vault's own sys/metrics does.
func (b *backend) metricsRead(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	body, err := b.metrics.exposition()
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		logical.HTTPContentType: metricsContentType,
		logical.HTTPRawBody:     body,
		logical.HTTPStatusCode:  http.StatusOK,
	}}, nil
}

// publicMetricsRead serves the metrics to callers without a token when the
// mount's unauthenticated_metrics setting is on, and 403 otherwise.
func (b *backend) publicMetricsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	st, err := readSettings(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if !st.UnauthenticatedMetrics {
		return nil, logical.CodedError(http.StatusForbidden,
			"unauthenticated metrics are off on this mount: read metrics with a Vault token, or write settings unauthenticated_metrics=true")
	}
	return b.metricsRead(ctx, req, d)
}

const pathMetricsHelpSyn = `Prometheus metrics of this mount's bank connections (text format).`

const pathMetricsHelpDesc = `
Reading metrics returns the Prometheus text exposition format (version
0.0.4) as a raw HTTP body, not JSON: scrape it with

  metrics_path: /v1/<mount>/metrics
  authorization: { credentials_file: <file holding a Vault token> }

or curl -H "X-Vault-Token: ..." $VAULT_ADDR/v1/<mount>/metrics.

Metrics (every counter is per Vault node and starts at zero when the plugin
starts; a config appears once it is used on this node):

  bankauth_bank_requests_total{config,provider,step,outcome}
      HTTP requests to the bank; outcome is 2xx, 3xx, 4xx, 5xx or no_answer.
  bankauth_bank_request_duration_seconds{config,outcome}  (histogram)
  bankauth_token_fetches_total{config,provider,result}
      whole token fetches; result is success or failure.
  bankauth_token_fetch_consecutive_failures{config}  (gauge)
  bankauth_token_cache_hits_total{config}, bankauth_token_cache_misses_total{config}
  bankauth_tokens_served_stale_total{config}
  bankauth_token_expiry_timestamp_seconds{config}  (gauge, token in memory)
  bankauth_background_refresh_lag_seconds  (histogram)
  bankauth_consent_refresh_failures_total{config,reason}
      failed consent token refreshes; reason is invalid_grant, expired,
      no_refresh_token, unknown_outcome, upstream, rejected, egress, config,
      storage or other.
  bankauth_consent_revocations_total{config}
      consents the bank revoked (invalid_grant on a refresh).
  bankauth_consents{config,state}, bankauth_consents_expiring_7d{config}
      (gauges) consents stored per state, and authorized ones whose
      consent_expires_at is within 7 days: counted by a background census
      of storage on the active node, a few minutes after the mount and then
      every 15 minutes, at most 400 storage reads a second.
  bankauth_consent_census_timestamp_seconds  (gauge) when the last whole
      census ended.
  go_* and process_*: the plugin process.

No metric carries a secret or a token.
`

const pathPublicMetricsHelpSyn = `The same Prometheus metrics, without a Vault token, when enabled.`

const pathPublicMetricsHelpDesc = `
metrics/public serves exactly what metrics serves, to callers without a
Vault token, but only while the mount's setting unauthenticated_metrics is
true (vault write <mount>/settings unauthenticated_metrics=true). Otherwise
it answers 403. Use it for Prometheus servers that hold no Vault token.
`
