package main

import (
	"log"
	"sort"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// soakResult is the soak phase's outcome.
type soakResult struct {
	readers       int
	duration      time.Duration
	reads, errors int
	// Tokens handed to readers, and what the bank was asked for them.
	distinct, issued, bankRequests, bankFailed int
	// Readers that were handed an expired token at least once, and how often.
	readersExpired, readsExpired int
	windows                      int
	inside, outside              int // reads started inside / outside refresh windows
	p50In, p99In                 time.Duration
	p50Out, p99Out               time.Duration
	firstErr                     error
}

// soakPhase runs readers against short-lived tokens for a long time: every
// token must cost one bank request, no reader may get an expired token, and
// reads around a token's replacement should be as fast as the others.
func (b *bench) soakPhase() error {
	s, err := b.startVault(b.o.soakStorage, false)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Mount("bankauth", "soak"); err != nil {
		return err
	}
	provider := emulator.Etranzact // login, then refresh grants: one request per token
	b.emu.SetTTL(provider, b.o.soakTTL)
	b.emu.SetLatency(provider, b.o.soakLatency)
	defer b.emu.SetLatency(provider, 0)
	if err := b.configure(s, "soak/config/soak", provider, nil); err != nil {
		return err
	}
	path := url(s, "soak/token/soak")
	if _, err := get(b.client, path, s.RootToken); err != nil {
		return err
	}
	log.Printf("soak: %d readers for %v against %v tokens", b.o.soakReaders, b.o.soak, b.o.soakTTL)
	before := b.emu.Stats(provider)
	start := time.Now()
	end := start.Add(b.o.soak)

	type readerLog struct {
		samples  []sample
		tokens   map[string]bool
		expired  int
		errors   int
		firstErr error
	}
	logs := make([]readerLog, b.o.soakReaders)
	var wg sync.WaitGroup
	for i := range logs {
		wg.Add(1)
		go func(i int, rl *readerLog) {
			defer wg.Done()
			rl.tokens = map[string]bool{}
			// Stagger the readers over one pause, so that they do not arrive
			// in bursts of all of them at once.
			time.Sleep(time.Duration(i) * b.o.soakInterval / time.Duration(len(logs)))
			for time.Now().Before(end) {
				t0 := time.Now()
				body, err := get(b.client, path, s.RootToken)
				lat := time.Since(t0)
				var sec vaultSecret
				if err == nil {
					sec, err = parseSecret(body)
				}
				if err != nil {
					rl.errors++
					if rl.firstErr == nil {
						rl.firstErr = err
					}
				} else {
					rl.samples = append(rl.samples, sample{t0, lat})
					rl.tokens[sec.Data.AccessToken] = true
					if !b.emu.TokenValid(provider, sec.Data.AccessToken) || sec.Data.ExpiresIn <= 0 {
						rl.expired++
					}
				}
				if b.o.soakInterval > 0 {
					time.Sleep(b.o.soakInterval)
				}
			}
		}(i, &logs[i])
	}
	wg.Wait()
	after := b.emu.Stats(provider)
	res := soakResult{readers: b.o.soakReaders, duration: time.Since(start)}
	res.bankRequests = after.Total - before.Total
	res.issued = (after.Logins + after.Refreshes) - (before.Logins + before.Refreshes)
	res.bankFailed = after.Failed - before.Failed

	tokens := map[string]bool{}
	var samples []sample
	for _, rl := range logs {
		res.reads += len(rl.samples)
		res.errors += rl.errors
		if res.firstErr == nil {
			res.firstErr = rl.firstErr
		}
		if rl.expired > 0 {
			res.readersExpired++
			res.readsExpired += rl.expired
		}
		for t := range rl.tokens {
			tokens[t] = true
		}
		samples = append(samples, rl.samples...)
	}
	res.distinct = len(tokens)
	windows := refreshWindows(b, provider, tokens, start, b.o.soakTTL, b.o.soakLatency, b.o.soakWindow)
	res.windows = len(windows)
	in, out := splitByWindows(samples, windows)
	res.inside, res.outside = len(in), len(out)
	res.p50In, res.p99In = percentile(in, 50), percentile(in, 99)
	res.p50Out, res.p99Out = percentile(out, 50), percentile(out, 99)
	log.Printf("soak: %d reads, %d tokens, %d bank requests, %d readers saw an expired token, p99 in/out %v/%v",
		res.reads, res.distinct, res.bankRequests, res.readersExpired, res.p99In, res.p99Out)
	b.rep.soak = &res
	return nil
}

// refreshWindows are the spans around each token replacement during the
// soak: from the bank request's start (issue time minus the emulator's
// latency) minus margin to the issue time plus margin. A token's issue time
// is its expiry minus the lifetime the emulator granted. With a background
// refresh the replacement may come before the old token goes stale; the
// windows follow the bank's answers either way.
func refreshWindows(b *bench, provider string, tokens map[string]bool, since time.Time, ttl, latency, margin time.Duration) []window {
	var out []window
	for t := range tokens {
		exp, ok := b.emu.TokenExpiry(provider, t)
		if !ok {
			continue
		}
		issued := exp.Add(-ttl)
		if issued.Before(since) {
			continue // the token the soak started with
		}
		out = append(out, window{issued.Add(-latency - margin), issued.Add(margin)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].from.Before(out[j].from) })
	return out
}
