package bankauth

import (
	"context"

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
	return &logical.Response{Data: map[string]any{fieldUnauthenticatedMetrics: st.UnauthenticatedMetrics}}, nil
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
	se, err := logical.StorageEntryJSON(settingsKey, st)
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Put(ctx, se)
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
`
