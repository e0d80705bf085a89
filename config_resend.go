package bankauth

import (
	"context"
	"strings"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Secrets are write-only: a config writer need not be able to read them.
// These rules keep a writer from sending stored secrets somewhere new
// without holding them (docs/security.md).

// writeRules are the checks a config write makes beyond Validate, which
// also runs on stored configs: the secrets-resend rule, and key strength
// for a newly written mTLS key (stored configs keep working after an
// upgrade). nil: the write may go ahead.
func writeRules(existing, cfg *bank.Config, sent map[string]bool) *logical.Response {
	if sent[bank.FieldTLSClientKey] {
		if resp, _ := configError(cfg.CheckClientKeyStrength()); resp != nil {
			return resp
		}
	}
	return resendRequired(existing, cfg, sent)
}

// sentFields lists the fields a write carries with a value.
func sentFields(d *framework.FieldData) map[string]bool {
	sent := make(map[string]bool, len(d.Raw))
	for k, v := range d.Raw {
		sent[k] = v != nil && v != ""
	}
	return sent
}

// resendRequired refuses, with a 400 naming the secret fields, a config
// write that changes where or how the stored secrets are sent (see
// bank.RouteChanges) without carrying them again. cfg is the merged
// config, its profile attached.
func resendRequired(existing, cfg *bank.Config, sent map[string]bool) *logical.Response {
	changed, resend := bank.SecretsToResend(existing, cfg, func(field string) bool { return sent[field] })
	if len(resend) == 0 {
		return nil
	}
	return logical.ErrorResponse("changing %s would send the stored secrets to a new place or in a new way: resend %s in the same write (nothing was stored)",
		strings.Join(changed, ", "), strings.Join(resend, ", "))
}

// profileRedirects refuses, with a 400, a rewrite of profile name that
// changes the hosts its steps talk to, or its default base_url, while
// configs use it: their secrets would follow without their writers'
// consent. users names those configs.
func profileRedirects(ctx context.Context, s logical.Storage, name string, p *bank.Profile, users []string) (*logical.Response, error) {
	if len(users) == 0 {
		return nil, nil
	}
	old, _, err := readProfile(ctx, s, name)
	if err != nil || old == nil {
		return nil, err
	}
	was, now := bank.ProfileEndpoints(old), bank.ProfileEndpoints(p)
	if strings.Join(was, "\n") == strings.Join(now, "\n") {
		return nil, nil
	}
	return logical.ErrorResponse("invalid profile: it changes where requests go (base_url or a step url's host) while configs use it (%s): their secrets would follow; write a profile under a new name, or delete those configs first",
		strings.Join(users, ", ")), nil
}
