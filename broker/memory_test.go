package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// gateCount is how many of the broker's names hold or await a lock.
func (b *Broker) gateCount() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	b.gates.mu.Lock()
	defer b.gates.mu.Unlock()
	n := 0
	for _, c := range b.conns {
		if c.gate != nil {
			n++
		}
	}
	return n
}

func TestIdleNamesHoldNoLock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 20 {
		e.configure(fmt.Sprintf("c%d", i))
	}
	e.emu.SetLatency(emulator.Rakbank, 20*time.Millisecond)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.b.Get(ctx, e.st, fmt.Sprintf("c%d", i%20)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := e.b.Change(ctx, "c3", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := e.b.gateCount(); n != 0 {
		t.Fatalf("%d idle names still hold a lock", n)
	}

	// A waiter that gives up leaves the lock as it found it.
	c := e.b.lookup("c0")
	if err := e.b.acquire(ctx, c); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := e.b.acquire(short, c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire of a held lock: %v, want the deadline", err)
	}
	if got, err := e.b.acquireWithin(ctx, c, e.clock, 0); got || err != nil {
		t.Fatalf("acquireWithin of a held lock: %v %v", got, err)
	}
	e.b.release(c)
	if err := e.b.acquire(ctx, c); err != nil {
		t.Fatalf("lock not free after its holder released it: %v", err)
	}
	e.b.release(c)
	if n := e.b.gateCount(); n != 0 {
		t.Fatalf("%d idle names still hold a lock", n)
	}
}

func TestMemoryKeepsNoRefreshToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.emu.SetTTL(emulator.Etranzact, 5*time.Second) // stale after 4s
	creds := emulator.DefaultCredentials()
	e.st.mu.Lock()
	e.st.configs["etz"] = &bank.Config{Provider: emulator.Etranzact, BaseURL: e.url,
		Settings: map[string]string{"username": creds.Username},
		Secrets:  map[string]string{"password": creds.Password}}
	e.st.mu.Unlock()
	first, err := e.b.Get(ctx, e.st, "etz")
	if err != nil {
		t.Fatal(err)
	}
	e.st.mu.Lock()
	stored := *e.st.tokens["etz"]
	e.st.mu.Unlock()
	if stored.RefreshToken == "" {
		t.Fatal("the bank gave no refresh token to test with")
	}
	if first.Token.RefreshToken != "" {
		t.Fatal("a reader was handed the refresh token")
	}
	if held := fmt.Sprintf("%#v", *e.b.lookup("etz").current()); strings.Contains(held, stored.RefreshToken) {
		t.Fatal("memory holds the refresh token")
	}
	// The refresh grant still uses it, read back from storage.
	e.clock.Advance(4100 * time.Millisecond)
	second, err := e.b.Get(ctx, e.st, "etz")
	if err != nil {
		t.Fatal(err)
	}
	if second.Token.AccessToken == first.Token.AccessToken {
		t.Fatal("stale token served again")
	}
	if st := e.emu.Stats(emulator.Etranzact); st.Logins != 1 || st.Refreshes != 1 {
		t.Fatalf("bank saw %+v, want 1 login + 1 refresh", st)
	}
}

func TestCompactTokenKeepsItsTimes(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tok := &bank.Token{AccessToken: "a", TokenType: "Bearer", ObtainedAt: now, ExpiresAt: now.Add(time.Hour), RefreshToken: "r"}
	m := compact(tok)
	if got := m.token(); !got.ExpiresAt.Equal(tok.ExpiresAt) || !got.ObtainedAt.Equal(tok.ObtainedAt) ||
		got.AccessToken != "a" || got.TokenType != "Bearer" || got.RefreshToken != "" {
		t.Fatalf("compact token reads back as %+v", got)
	}
	stale := tok.StaleAt()
	if !m.freshAt(stale.Add(-time.Nanosecond)) || m.freshAt(stale) {
		t.Fatal("compact token goes stale at another moment than bank.Token's")
	}
	// An hour's token is stale at 48 minutes (a fifth of its life before
	// expiry) and renewed in the background at 42 (a tenth before that).
	if got, want := time.Unix(0, m.refreshPoint()), now.Add(42*time.Minute); !got.Equal(want) || !stale.Equal(now.Add(48*time.Minute)) {
		t.Fatalf("refresh point %v, stale at %v; want %v and 48 minutes", got, stale, want)
	}
	// A bank's "never" (year 9999) stays fresh, not wrapped into the past.
	never := compact(&bank.Token{AccessToken: "a", ObtainedAt: now, ExpiresAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)})
	if !never.freshAt(now) || !never.usableAt(now) || never.none() {
		t.Fatal("a token that never expires is not served")
	}
	if empty := compact(nil); !empty.none() || empty.freshAt(now) || empty.usableAt(now) {
		t.Fatal("no token reads as a token")
	}
}

// A cached read is the hot path: it builds the reader's token from the
// compact state without allocating.
func TestCachedReadAllocatesNothing(t *testing.T) {
	e := newEnv(t)
	e.configure("rak")
	if _, err := e.b.Get(context.Background(), e.st, "rak"); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if res, ok := e.b.Cached("rak"); !ok || res.Token.AccessToken == "" {
			t.Fatal("token not served from memory")
		}
	})
	if allocs != 0 {
		t.Fatalf("a cached read allocates %v times", allocs)
	}
}
