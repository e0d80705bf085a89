package broker

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkHeapOf10kCachedTokens reports the heap the broker holds for
// 10,000 connections, each with a cached token whose background refresh is
// planned: B/conn is what the broker frees when its state goes, B/conn-all
// also counts the emulator's record of the tokens it issued.
//
//	go test -run '^$' -bench HeapOf10k -benchtime 1x ./broker/
func BenchmarkHeapOf10kCachedTokens(b *testing.B) {
	const names = 10_000
	for range b.N {
		e := newEnv(&testing.T{})
		for i := range names {
			e.configure(fmt.Sprintf("c%05d", i))
		}
		ctx := context.Background()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range names {
			if _, err := e.b.Get(ctx, e.st, fmt.Sprintf("c%05d", i)); err != nil {
				b.Fatal(err)
			}
		}
		e.st.mu.Lock()
		e.st.tokens = nil // the store's copies are Vault's memory, not the plugin's
		e.st.mu.Unlock()
		runtime.GC()
		runtime.ReadMemStats(&after)
		// What the broker alone holds: the heap it frees when its state goes
		// (the emulator's record of the tokens it issued stays).
		e.b.Close()
		e.b.mu.Lock()
		e.b.conns = map[string]*conn{}
		e.b.mu.Unlock()
		e.b.sched.mu.Lock()
		e.b.sched.q = nil
		e.b.sched.mu.Unlock()
		var dropped runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&dropped)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/names, "B/conn-all")
		b.ReportMetric(float64(after.HeapAlloc-dropped.HeapAlloc)/names, "B/conn")
		runtime.KeepAlive(e)
	}
}

// BenchmarkHeapOf10kCachedConsents reports the heap the broker holds for
// 10,000 consents that were read, each with a cached token (an access
// token of 1 KiB, about a JWT's size) whose background refresh is
// planned: B/consent is what the broker frees when their state goes; the
// access token's own bytes are B/consent minus B/consent-state.
//
//	go test -run '^$' -bench HeapOf10kCachedConsents -benchtime 1x ./broker/
func BenchmarkHeapOf10kCachedConsents(b *testing.B) {
	const consents = 10_000
	const tokenLen = 1024
	for range b.N {
		br, src, _ := newConsentBroker(b)
		for i := range consents {
			src.authorize(fmt.Sprintf("ob/user%05d", i))
			r := src.recs[fmt.Sprintf("ob/user%05d", i)]
			r.access = fmt.Sprintf("%0*d", tokenLen, i)
		}
		ids := make([]string, consents)
		for i := range ids {
			ids[i] = fmt.Sprintf("user%05d", i)
		}
		ctx := context.Background()
		runtime.GC()
		var before, after, dropped runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, id := range ids {
			if _, err := br.ConsentToken(ctx, src, "ob", id); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if br.ConsentLen() != consents || br.Planned() != consents {
			b.Fatalf("%d consents, %d planned", br.ConsentLen(), br.Planned())
		}
		br.Close()
		runtime.GC()
		runtime.ReadMemStats(&dropped)
		perConsent := float64(after.HeapAlloc-dropped.HeapAlloc) / consents
		b.ReportMetric(perConsent, "B/consent")
		b.ReportMetric(perConsent-tokenLen, "B/consent-state")
		runtime.KeepAlive(src)
		runtime.KeepAlive(ids)
	}
}
