package bankauth

import (
	"context"
	"fmt"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/hashicorp/vault/sdk/logical"
)

// budgetPrefix holds each name's recent bank request times, so that the
// request budget (max_requests_per_minute/day) survives a Vault restart or
// plugin reload.
const budgetPrefix = "budget/"

// storedBudget is what budget/<name> holds.
type storedBudget struct {
	Sent []time.Time `json:"sent"`
}

// attachBudget gives the client the entry's request budget, loading it from
// storage the first time. The caller holds the entry's lock.
func (b *backend) attachBudget(ctx context.Context, s logical.Storage, name string, e *entry, client *engine.Client) error {
	if client.Config().EffectiveLimits().None() {
		return nil
	}
	if e.budget == nil {
		var sb storedBudget
		se, err := s.Get(ctx, budgetPrefix+name)
		if err != nil {
			return err
		}
		if se != nil {
			if err := se.DecodeJSON(&sb); err != nil {
				return fmt.Errorf("decoding request budget of %q: %w", name, err)
			}
		}
		e.budget = engine.NewBudget(sb.Sent)
	}
	client.SetBudget(e.budget)
	return nil
}

// saveBudget stores the budget's request times when they changed. A failure
// is logged, not returned: the token is what the reader came for.
func (b *backend) saveBudget(ctx context.Context, s logical.Storage, name string, e *entry) {
	if e.budget == nil {
		return
	}
	sent, changed := e.budget.Changed()
	if !changed {
		return
	}
	se, err := logical.StorageEntryJSON(budgetPrefix+name, storedBudget{Sent: sent})
	if err == nil {
		err = s.Put(ctx, se)
	}
	if err != nil {
		b.Logger().Named(name).Warn("cannot store the request budget", "error", err)
	}
}
