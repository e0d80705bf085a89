package bankauth

import (
	"context"
	"errors"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// settingsKey is the storage key of the mount-wide settings.
const settingsKey = "settings"

const fieldUnauthenticatedMetrics = "unauthenticated_metrics"

// mountSettings are the settings of one bankauth mount, as opposed to the
// per-connection config/<name>.
type mountSettings struct {
	// UnauthenticatedMetrics lets metrics/public answer without a Vault
	// token, for Prometheus scrapers. Off by default.
	UnauthenticatedMetrics bool `json:"unauthenticated_metrics"`
	// AllowLoopback and AllowedHosts are the mount's egress policy (see
	// bank.EgressPolicy): where bank requests may go.
	AllowLoopback bool     `json:"allow_loopback,omitempty"`
	AllowedHosts  []string `json:"allowed_hosts,omitempty"`
}

func pathSettings(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "settings$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: "bankauth",
			OperationSuffix: "settings",
		},
		Fields: map[string]*framework.FieldSchema{
			fieldUnauthenticatedMetrics: {Type: framework.TypeBool, Default: false,
				Description: "Serve the Prometheus metrics at metrics/public without a Vault token. Default false: metrics/public answers 403 and metrics needs a token with read on it."},
			bank.FieldAllowLoopback: {Type: framework.TypeBool, Default: false,
				Description: "Let bank requests go to loopback addresses (127.0.0.0/8, ::1), and plain http to loopback hosts: for development and tests. Default false."},
			bank.FieldAllowedHosts: {Type: framework.TypeCommaStringSlice,
				Description: "When set, the only places bank requests may go: host names (bank.example, *.bank.example) and IP addresses or CIDRs (203.0.113.0/24) the resolved address must fall in. Empty (default): any routable address."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.settingsRead,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"}},
			logical.UpdateOperation: &framework.PathOperation{Callback: b.settingsWrite,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"}},
		},
		HelpSynopsis:    pathSettingsHelpSyn,
		HelpDescription: pathSettingsHelpDesc,
	}}
}

// readSettings returns the mount's settings, defaults when none are stored.
func readSettings(ctx context.Context, s logical.Storage) (*mountSettings, error) {
	var out mountSettings
	se, err := s.Get(ctx, settingsKey)
	if err != nil || se == nil {
		return &out, err
	}
	return &out, se.DecodeJSON(&out)
}

func (b *backend) settingsRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	st, err := readSettings(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	hosts := st.AllowedHosts
	if hosts == nil {
		hosts = []string{}
	}
	return &logical.Response{Data: map[string]any{
		fieldUnauthenticatedMetrics: st.UnauthenticatedMetrics,
		bank.FieldAllowLoopback:     st.AllowLoopback,
		bank.FieldAllowedHosts:      hosts,
	}}, nil
}

// settingsWrite changes the fields the request names and keeps the others.
func (b *backend) settingsWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	st, err := readSettings(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if v, ok := d.GetOk(fieldUnauthenticatedMetrics); ok {
		st.UnauthenticatedMetrics = v.(bool)
	}
	before := st.egressPolicy().String()
	if resp := mergeEgressSettings(st, d); resp != nil {
		return resp, nil
	}
	egressChanged := st.egressPolicy().String() != before
	se, err := logical.StorageEntryJSON(settingsKey, st)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, se); err != nil {
		return nil, err
	}
	// Existing clients follow the new policy from their next request on;
	// failures the old policy caused no longer hold back new requests.
	if err := b.applyEgress(st); err != nil {
		return nil, err
	}
	if egressChanged {
		b.broker.ForgetAll()
	}
	return nil, nil
}

// mergeEgressSettings applies the request's egress fields to st; a 400
// names a bad allowed_hosts entry.
func mergeEgressSettings(st *mountSettings, d *framework.FieldData) *logical.Response {
	if v, ok := d.GetOk(bank.FieldAllowLoopback); ok {
		st.AllowLoopback = v.(bool)
	}
	if v, ok := d.GetOk(bank.FieldAllowedHosts); ok {
		st.AllowedHosts = nil
		for _, h := range v.([]string) {
			if h = strings.TrimSpace(h); h != "" {
				st.AllowedHosts = append(st.AllowedHosts, h)
			}
		}
	}
	if err := st.egressPolicy().Validate(); err != nil {
		var fe *bank.FieldError
		if errors.As(err, &fe) {
			return logical.ErrorResponse("invalid %s: %s", fe.Field, fe.Message)
		}
		return logical.ErrorResponse("invalid egress settings: %s", err)
	}
	return nil
}

const pathSettingsHelpSyn = `Mount-wide settings of this bankauth mount.`

const pathSettingsHelpDesc = `
Settings that apply to the whole mount rather than to one bank connection.

unauthenticated_metrics (bool, default false): when true, metrics/public
serves the same Prometheus text as metrics without a Vault token, so a
Prometheus server can scrape it without a token. When false, metrics/public
answers 403 and only metrics (which needs a token with read on it) serves
the metrics. Metrics hold no secret and no token, but they do name every
bank connection of the mount.

Egress policy: where this mount's bank requests may go, checked for every
request and, after DNS resolution, for every connection, so a name that
resolves to a refused address is refused too. By default loopback,
link-local (169.254.0.0/16, fe80::/10: cloud metadata services),
unspecified and multicast addresses are refused, and plain http is refused.

allow_loopback (bool, default false): allow loopback addresses, and plain
http to loopback hosts (127.0.0.1, ::1, localhost). For development and
tests against a local emulator.

allowed_hosts (comma-separated list, default empty): when set, the only
destinations: host names (bank.example, or *.bank.example for the names
under it) and IP addresses or CIDRs (203.0.113.0/24) the resolved address
must fall in. The other refusals still apply.

Requests use the proxy the plugin's environment names (HTTPS_PROXY,
HTTP_PROXY, NO_PROXY; set them with vault plugin register -env). The proxy's
own address is trusted; through a proxy the bank's host is checked by name
and literal address only, since the proxy resolves it.

A settings write applies to existing connections from their next request:
it goes over a new connection, and open connections (HTTP/2 ones in use
included) to hosts the new policy refuses are closed.
`
