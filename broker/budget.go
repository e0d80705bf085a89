package broker

import (
	"context"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// attachBudget gives the client c's request budget, loading it from storage
// the first time, so that the budget survives restarts and config changes.
// The caller holds c's lock.
func (b *Broker) attachBudget(ctx context.Context, st Store, c *conn, client *bank.Client) error {
	if client.Config().EffectiveLimits().None() {
		return nil
	}
	if c.budget == nil {
		sent, err := st.Budget(ctx, c.name)
		if err != nil {
			return err
		}
		c.budget = bank.NewBudget(sent)
	}
	client.SetBudget(c.budget)
	return nil
}

// saveBudget stores the budget's request times when they changed. A failure
// is logged, not returned: the token is what the reader came for.
func (b *Broker) saveBudget(ctx context.Context, st Store, c *conn, client *bank.Client) {
	budget := client.Budget()
	if budget == nil {
		return
	}
	sent, changed := budget.Changed()
	if !changed {
		return
	}
	if err := st.PutBudget(ctx, c.name, sent); err != nil {
		b.logger.Warn("cannot store the request budget", "config", c.name, "error", err)
	}
}
