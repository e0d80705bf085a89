package broker

import (
	"context"
	"math"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// view is what the read path needs of a config, kept in memory between
// fetches instead of the config: eight bytes.
type view struct {
	idleSecs int32 // background_refresh_idle in effect, whole seconds rounded up; 0: off
	lease    bool  // token reads carry a Vault lease
	noCache  bool  // every read fetches (cache=false)
}

func viewOf(cfg *bank.Config) view {
	idle := cfg.EffectiveBackgroundRefreshIdle()
	secs := min((idle+time.Second-1)/time.Second, math.MaxInt32)
	return view{idleSecs: int32(max(secs, 0)), lease: !cfg.NoLease, noCache: cfg.NoCache}
}

// idle is background_refresh_idle in effect; 0: background refresh off.
func (v view) idle() time.Duration { return time.Duration(v.idleSecs) * time.Second }

// readConfig reads c's config; a config gone from storage takes c's state
// with it.
func (b *Broker) readConfig(ctx context.Context, st Store, c *conn) (*bank.Config, error) {
	cfg, err := st.Config(ctx, c.name)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		b.remove(c.name, c)
		return nil, NoConfigError(c.name)
	}
	return cfg, nil
}

// client builds a bank client for one fetch of c from the config as storage
// now holds it (or cfg, when the caller read it under the same lock), with
// c's counters and request budget. The caller holds c's
// lock (cache=false fetches excepted, which hold it only for the budget's
// first load) and closes the client after the fetch. HTTP transports are
// shared between clients (bank/transport.go), so connections to a bank
// are reused all the same.
func (b *Broker) client(ctx context.Context, st Store, c *conn, cfg *bank.Config) (*bank.Client, *bank.Config, error) {
	if cfg == nil {
		var err error
		if cfg, err = b.readConfig(ctx, st, c); err != nil {
			return nil, nil, err
		}
	}
	opts, err := st.ClientOptions(ctx)
	if err != nil {
		return nil, nil, err
	}
	client, err := bank.NewClient(cfg, b.logger.With("config", c.name), opts...)
	if err != nil {
		return nil, nil, err
	}
	client.SetClock(b.clock.Now)
	client.SetObserver(&observer{provider: cfg.Provider, stats: &c.stats, now: b.clock.Now})
	c.useNonce(client)
	if err := b.attachBudget(ctx, st, c, client); err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, cfg, nil
}
