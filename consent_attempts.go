package bankauth

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// attemptIndexPrefix indexes the authorization attempts not yet swept:
// consent-attempt/<config>/<id> holds the latest attempt's expiry (no
// secret). The scheduler removes each attempt at its expiry, but that plan
// lives in memory: so once consents are used after the mount started, the
// scheduler sweeps this index (which holds only recent attempts, never the
// whole of consent/) attemptSweepEvery later, and again while attempts are
// left.
const attemptIndexPrefix = "consent-attempt/"

// attemptSweepEvery is how often the scheduler sweeps the attempt index
// while it holds attempts.
const attemptSweepEvery = 10 * time.Minute

// attemptKey is the attempt index's key of consent id of config.
func attemptKey(config, id string) string { return attemptIndexPrefix + config + "/" + id }

type attemptIndexEntry struct {
	ExpiresAt time.Time `json:"expires_at"`
}

// putAttemptIndex records the consent's latest attempt's expiry.
func putAttemptIndex(ctx context.Context, s logical.Storage, config, id string, expires time.Time) error {
	se, err := logical.StorageEntryJSON(attemptKey(config, id), attemptIndexEntry{ExpiresAt: expires})
	if err != nil {
		return err
	}
	return s.Put(ctx, se)
}

// readAttemptIndex returns the indexed expiry of the consent's latest
// attempt; zero when none is indexed.
func readAttemptIndex(ctx context.Context, s logical.Storage, config, id string) (time.Time, error) {
	se, err := s.Get(ctx, attemptKey(config, id))
	if err != nil || se == nil {
		return time.Time{}, err
	}
	var e attemptIndexEntry
	if err := se.DecodeJSON(&e); err != nil {
		return time.Time{}, err
	}
	return e.ExpiresAt, nil
}

// dropAttemptIndex removes the consent's index entry once the attempt it
// names has expired at now (a newer attempt's entry stays). The caller
// holds the consent's lock.
func dropAttemptIndex(ctx context.Context, s logical.Storage, config, id string, now time.Time) error {
	exp, err := readAttemptIndex(ctx, s, config, id)
	if err != nil || (!exp.IsZero() && now.Before(exp)) {
		return err
	}
	return s.Delete(ctx, attemptKey(config, id))
}

// consentsInUse is called by every consent path: it wakes the consent
// census if it sleeps, and the first call of the process plans a sweep of the attempt index (attempts from before a
// restart or failover, whose planned removal was lost), which plans itself
// again while attempts are left. Start-up reads nothing for it, and a
// mount whose consents are never used has no timer for it.
func (b *backend) consentsInUse() {
	b.attemptSweep.Do(b.broker.PlanAttemptSweep)
	b.wakeCensus() // consent_census.go
}
