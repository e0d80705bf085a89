package bankauth

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// attemptIndexPrefix indexes the authorization attempts not yet swept:
// consent-attempt/<config>/<id> holds the latest attempt's expiry (no
// secret). The scheduler removes each attempt at its expiry, but that plan
// lives in memory: when the mount starts with attempts indexed (written
// before a restart or a failover), the scheduler sweeps this index, which
// holds only recent attempts, never the whole of consent/, every
// attemptSweepEvery until none is left.
const attemptIndexPrefix = "consent-attempt/"

// attemptSweepEvery is how often the scheduler sweeps the attempt index
// while it holds attempts from before the mount started.
const attemptSweepEvery = 10 * time.Minute

type attemptIndexEntry struct {
	ExpiresAt time.Time `json:"expires_at"`
}

// putAttemptIndex records the consent's latest attempt's expiry.
func putAttemptIndex(ctx context.Context, s logical.Storage, config, id string, expires time.Time) error {
	se, err := logical.StorageEntryJSON(attemptIndexPrefix+config+"/"+id, attemptIndexEntry{ExpiresAt: expires})
	if err != nil {
		return err
	}
	return s.Put(ctx, se)
}

// readAttemptIndex returns the indexed expiry of the consent's latest
// attempt; zero when none is indexed.
func readAttemptIndex(ctx context.Context, s logical.Storage, config, id string) (time.Time, error) {
	se, err := s.Get(ctx, attemptIndexPrefix+config+"/"+id)
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
	return s.Delete(ctx, attemptIndexPrefix+config+"/"+id)
}

// planAttemptSweep plans the sweep of attempts from before the mount
// started, if any are indexed: one List of the index, nothing of consent/.
func (b *backend) planAttemptSweep(ctx context.Context, s logical.Storage) {
	keys, err := s.List(ctx, attemptIndexPrefix)
	if err != nil {
		b.Logger().Warn("cannot list the consent attempt index; sweeping it later", "error", err)
	}
	if err != nil || len(keys) > 0 {
		b.broker.PlanAttemptSweep()
	}
}
