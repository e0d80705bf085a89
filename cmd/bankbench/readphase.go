package main

import (
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// target is one read path measured in the read phase.
type target struct {
	name  string
	path  string
	lease bool
}

var readTargets = []target{
	{"kv-v2", "kv/data/tok", false},
	{"null, lease", "null-lease/token/t", true},
	{"bankauth, lease", "bankauth/token/lease", true},
	{"null, no lease", "null-nolease/token/t", false},
	{"bankauth, no lease", "bankauth/token/nolease", false},
}

// readCell is the result of one target at one concurrency, all rounds.
type readCell struct {
	target  target
	conc    int
	perSec  float64
	p50     time.Duration
	p99     time.Duration
	reads   int
	errors  int
	lastErr error
}

// coldResult is the cold-start phase's outcome.
type coldResult struct {
	lease                                   bool
	readers, bankRequests, distinct, errors int
	slowest, p50, latency                   time.Duration
	firstErr                                error
}

// readAndColdPhases runs the read phase and the cold-start phase on one
// Vault with the given storage.
func (b *bench) readAndColdPhases(storage string) error {
	s, err := b.startVault(storage, true)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := b.setupReadTargets(s); err != nil {
		return err
	}
	if b.o.phases["read"] {
		cells, err := b.readPhase(s, storage)
		if err != nil {
			return err
		}
		b.rep.reads[storage] = cells
	}
	if b.o.phases["cold"] {
		for _, lease := range []bool{true, false} {
			res, err := b.coldPhase(s, storage, lease)
			if err != nil {
				return err
			}
			b.rep.cold[storage] = append(b.rep.cold[storage], res)
		}
	}
	return nil
}

// setupReadTargets mounts KV v2, bankauth and the null plugin (with and
// without leases) and primes each so that every read is a cached read.
func (b *bench) setupReadTargets(s *vaulttest.Server) error {
	b.emu.SetTTL(emulator.Rakbank, time.Hour) // no refresh during the read phase
	for _, args := range [][]string{
		{"secrets", "enable", "-path=kv", "-version=2", "kv"},
		{"secrets", "enable", "-path=bankauth", "bankauth"},
		{"write", "bankauth/settings", "allow_loopback=true"}, // the emulator is on 127.0.0.1
		{"secrets", "enable", "-path=null-lease", "-options=lease=true", "null"},
		{"secrets", "enable", "-path=null-nolease", "-options=lease=false", "null"},
	} {
		if _, err := s.MustCLI(args...); err != nil {
			return err
		}
	}
	if err := b.configure(s, "bankauth/config/lease", emulator.Rakbank, nil); err != nil {
		return err
	}
	if err := b.configure(s, "bankauth/config/nolease", emulator.Rakbank, map[string]any{"lease": false}); err != nil {
		return err
	}
	// KV holds a secret of the same shape and size as a token read's data.
	sec, err := s.Client.Logical().Read("bankauth/token/lease")
	if err != nil {
		return err
	}
	if _, err := s.Client.Logical().Write("kv/data/tok", map[string]any{"data": sec.Data}); err != nil {
		return err
	}
	// Each target must answer, with a lease exactly where one is expected.
	for _, t := range readTargets {
		body, err := get(b.client, url(s, t.path), s.RootToken)
		if err != nil {
			return err
		}
		sec, err := parseSecret(body)
		if err != nil {
			return fmt.Errorf("%s: %w", t.path, err)
		}
		if hasLease := sec.LeaseID != "" && sec.LeaseDuration > 0; hasLease != t.lease {
			return fmt.Errorf("%s: lease_id %q lease_duration %d, want lease=%t", t.path, sec.LeaseID, sec.LeaseDuration, t.lease)
		}
	}
	return nil
}

// readPhase measures every target at every concurrency. Within a round the
// targets run one after another in an order that rotates per round, so slow
// drift (other work on the machine, leases piling up) is shared out evenly.
func (b *bench) readPhase(s *vaulttest.Server, storage string) ([]readCell, error) {
	log.Printf("%s: warming up", storage)
	for _, t := range readTargets {
		closedLoop(b.client, url(s, t.path), s.RootToken, 8, b.o.cell/3)
	}
	var cells []readCell
	for _, conc := range b.o.concurrency {
		acc := make([]loadResult, len(readTargets))
		for r := 0; r < b.o.rounds; r++ {
			for k := range readTargets {
				i := (k + r) % len(readTargets)
				t := readTargets[i]
				res := closedLoop(b.client, url(s, t.path), s.RootToken, conc, b.o.cell)
				log.Printf("%s: c=%d round %d %-20s %8.0f reads/s p99 %v errors %d", storage, conc, r+1, t.name,
					res.perSecond(), percentile(res.latencies, 99), res.errors)
				acc[i].add(res)
			}
		}
		for i, t := range readTargets {
			a := acc[i]
			cells = append(cells, readCell{target: t, conc: conc, perSec: a.perSecond(),
				p50: percentile(a.latencies, 50), p99: percentile(a.latencies, 99),
				reads: a.reads, errors: a.errors, lastErr: a.firstErr})
		}
	}
	return cells, nil
}

// coldPhase starts many readers at once on a token that is not cached and
// counts the bank requests they cause.
func (b *bench) coldPhase(s *vaulttest.Server, storage string, lease bool) (coldResult, error) {
	n := b.o.coldReaders
	res := coldResult{lease: lease, readers: n, latency: b.o.coldLatency}
	name := "cold-lease"
	if !lease {
		name = "cold-nolease"
	}
	log.Printf("%s: cold start, %d readers, lease=%t", storage, n, lease)
	// Open the readers' connections first, so that the measurement is of
	// Vault and the plugin, not of TCP connection set-up.
	warm := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); <-warm; get(b.client, url(s, "sys/health"), s.RootToken) }()
	}
	close(warm)
	wg.Wait()

	provider := emulator.AccelerationCloud
	b.emu.SetLatency(provider, b.o.coldLatency)
	defer b.emu.SetLatency(provider, 0)
	if err := b.configure(s, "bankauth/config/"+name, provider, map[string]any{"lease": lease}); err != nil {
		return res, err
	}
	before := b.emu.Stats(provider).Total
	start := make(chan struct{})
	lat := make([]time.Duration, n)
	toks := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			body, err := get(b.client, url(s, "bankauth/token/"+name), s.RootToken)
			lat[i] = time.Since(t0)
			if err == nil {
				var sec vaultSecret
				if sec, err = parseSecret(body); err == nil {
					toks[i] = sec.Data.AccessToken
				}
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	res.bankRequests = b.emu.Stats(provider).Total - before
	seen := map[string]bool{}
	for i := range toks {
		if errs[i] != nil {
			res.errors++
			if res.firstErr == nil {
				res.firstErr = errs[i]
			}
			continue
		}
		seen[toks[i]] = true
	}
	res.distinct = len(seen)
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	res.slowest = sorted[len(sorted)-1]
	res.p50 = percentile(sorted, 50)
	log.Printf("%s: cold start: %d bank requests, slowest %v", storage, res.bankRequests, res.slowest)
	return res, nil
}

// leaseCost is what a lease adds to one read, from the concurrency-1 cells:
// mean latency with a lease minus without.
func leaseCost(cells []readCell, plugin string) (time.Duration, bool) {
	var with, without float64
	for _, c := range cells {
		if c.conc != 1 || !strings.HasPrefix(c.target.name, plugin+",") || c.perSec == 0 {
			continue
		}
		if c.target.lease {
			with = 1 / c.perSec
		} else {
			without = 1 / c.perSec
		}
	}
	if with == 0 || without == 0 {
		return 0, false
	}
	return time.Duration((with - without) * float64(time.Second)), true
}
