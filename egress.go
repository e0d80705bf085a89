package bankauth

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/vault/sdk/logical"
)

// egressState is the mount's egress policy (settings allow_loopback and
// allowed_hosts) as package bank applies it: one *bank.Egress that every
// client of the mount shares, so a settings write changes where existing
// clients may connect at once. Its zero value is ready to use.
type egressState struct {
	once   sync.Once
	egress *bank.Egress
	loaded atomic.Bool // the stored settings have been applied
}

func (s *egressState) get() *bank.Egress {
	s.once.Do(func() {
		// The zero policy always compiles; the proxy comes from the
		// plugin's environment (vault plugin register -env HTTPS_PROXY=...).
		s.egress, _ = bank.NewEgress(bank.EgressPolicy{})
	})
	return s.egress
}

// egressFor returns the mount's egress, with the stored settings applied.
func (b *backend) egressFor(ctx context.Context, s logical.Storage) (bank.Option, error) {
	eg := b.egress.get()
	if !b.egress.loaded.Load() {
		st, err := readSettings(ctx, s)
		if err != nil {
			return nil, err
		}
		if err := eg.Set(st.egressPolicy()); err != nil {
			return nil, err
		}
		b.egress.loaded.Store(true)
	}
	return bank.WithEgress(eg), nil
}

// applyEgress makes st's policy the mount's, for existing clients too.
func (b *backend) applyEgress(st *mountSettings) error {
	if err := b.egress.get().Set(st.egressPolicy()); err != nil {
		return err
	}
	b.egress.loaded.Store(true)
	return nil
}

// reloadEgress re-reads the settings another node changed; on failure the
// next client load reads them again.
func (b *backend) reloadEgress(ctx context.Context) {
	b.egress.loaded.Store(false)
	if b.storage == nil {
		return
	}
	if st, err := readSettings(ctx, b.storage); err == nil {
		_ = b.applyEgress(st)
	}
	b.broker.ForgetAll()
}

func (st *mountSettings) egressPolicy() bank.EgressPolicy {
	return bank.EgressPolicy{AllowLoopback: st.AllowLoopback, AllowedHosts: st.AllowedHosts}
}
