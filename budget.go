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

// storedBudget is what budget/<name> holds: request times in Unix
// milliseconds, oldest first.
type storedBudget struct {
	SentMillis []int64 `json:"sent_ms"`
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
		sent := make([]time.Time, len(sb.SentMillis))
		for i, ms := range sb.SentMillis {
			sent[i] = time.UnixMilli(ms)
		}
		e.budget = engine.NewBudget(sent)
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
	sb := storedBudget{SentMillis: make([]int64, len(sent))}
	for i, t := range sent {
		sb.SentMillis[i] = t.UnixMilli()
	}
	se, err := logical.StorageEntryJSON(budgetPrefix+name, sb)
	if err == nil {
		err = s.Put(ctx, se)
	}
	if err != nil {
		b.Logger().Named(name).Warn("cannot store the request budget", "error", err)
	}
}
