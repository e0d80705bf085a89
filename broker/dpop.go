package broker

import (
	"context"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
)

// DPoPProof returns a DPoP proof (RFC 9449) for a resource request with
// name's dpop_key, bound to its current access token (fetched if need be),
// with nonce, or else the latest nonce the bank's token endpoint gave.
func (b *Broker) DPoPProof(ctx context.Context, st Store, name, htm, htu, nonce string) (string, bank.Token, error) {
	res, ok := b.Cached(name)
	if !ok {
		var err error
		if res, err = b.Get(ctx, st, name); err != nil {
			return "", bank.Token{}, err
		}
	}
	cfg, err := st.Config(ctx, name)
	if err != nil {
		return "", bank.Token{}, err
	}
	if cfg == nil {
		return "", bank.Token{}, NoConfigError(name)
	}
	opts, err := st.ClientOptions(ctx)
	if err != nil {
		return "", bank.Token{}, err
	}
	client, err := bank.NewClient(cfg, b.logger.With("config", name), opts...)
	if err != nil {
		return "", bank.Token{}, err
	}
	defer client.Close()
	client.SetClock(b.clock.Now)
	if c := b.lookup(name); c != nil {
		c.useNonce(client)
	}
	proof, err := client.DPoPProof(htm, htu, res.Token.AccessToken, nonce)
	return proof, res.Token, err
}

// useNonce gives client the DPoP nonce an earlier client of c learned.
func (c *conn) useNonce(client *bank.Client) {
	if n := c.dpopNonce.Load(); n != nil {
		client.SetDPoPNonce(*n)
	}
}

// keepNonce remembers the DPoP nonce client learned, for c's next clients.
func (c *conn) keepNonce(client *bank.Client) {
	if n := client.DPoPNonce(); n != "" {
		if old := c.dpopNonce.Load(); old == nil || *old != n {
			c.dpopNonce.Store(&n)
		}
	}
}
