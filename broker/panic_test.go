package broker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// panickyStore panics storing a token while armed, as a defect would.
type panickyStore struct {
	*memStore
	armed atomic.Bool
}

func (p *panickyStore) PutToken(ctx context.Context, name string, tok *bank.Token) error {
	if p.armed.Load() {
		var m map[string]int
		m[name]++ // a nil-map write: a runtime panic
	}
	return p.memStore.PutToken(ctx, name, tok)
}

// A panic in a background refresh is recovered and counted: the process,
// the scheduler and the name's lock all survive it.
func TestBackgroundRefreshPanicIsRecovered(t *testing.T) {
	e := newEnv(t)
	st := &panickyStore{memStore: e.st}
	var panics atomic.Int32
	e.b.Close()
	e.b = New(Options{Clock: e.clock, Store: st, Panicked: func() { panics.Add(1) }})
	t.Cleanup(e.b.Close)
	e.configure("rak")
	ctx := context.Background()
	if _, err := e.b.Get(ctx, st, "rak"); err != nil {
		t.Fatal(err)
	}
	st.armed.Store(true)
	e.clock.Advance(43 * time.Second) // past the refresh point of the emulator's 60 s token
	e.b.WaitBackground()
	if n := panics.Load(); n != 1 {
		t.Fatalf("%d panics counted, want 1", n)
	}
	st.armed.Store(false)
	before := e.emu.Stats(emulator.Rakbank).Total
	if _, err := e.b.Refresh(ctx, st, "rak"); err != nil {
		t.Fatalf("the name's lock did not survive the panic: %v", err)
	}
	if n := e.emu.Stats(emulator.Rakbank).Total - before; n != 1 {
		t.Fatalf("%d bank requests after the panic, want 1", n)
	}
}
