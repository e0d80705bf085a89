package bank_test

import (
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// BenchmarkHugeBodyRefused measures what a 10 MB answer costs a fetch: the
// client reads at most MaxBodySize+1 bytes, so B/op stays near 1-2 MiB
// whatever the bank sends.
func BenchmarkHugeBodyRefused(b *testing.B) {
	emu, url := newEmu(b)
	cfg := configFor(b, emulator.Rakbank, url)
	c, err := bank.NewClient(cfg, nil, loopback)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		emu.FailNext(emulator.Rakbank, 1, emulator.Failure{Status: 200, Body: `{"access_token":"`, BodyBytes: 10 << 20})
		if _, err := c.Fetch(b.Context(), nil); err == nil {
			b.Fatal("a 10 MB answer was accepted")
		}
	}
}
