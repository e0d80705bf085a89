package main

import (
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
	"github.com/hashicorp/vault/api"
)

// scaleRow is the scale phase's result at one config count.
type scaleRow struct {
	configs   int
	reload    time.Duration // sys/plugins/reload of the mount (Vault mounting the plugin anew), median of rounds
	firstRead time.Duration // the first token read after a reload (config and token from storage), median
	p50, p99  time.Duration // cached reads of one token, concurrency 1
	// The same reads on a mount with one config, interleaved with the above
	// in the same plugin process: the baseline the latency goal compares with.
	baseP50, baseP99 time.Duration
	rssFresh         float64       // plugin RSS after the reload and one token read, MiB
	rssAll           float64       // plugin RSS with every config's token read once, MiB (0: not measured)
	rssSettled       float64       // the same, scaleSettle later without fetches (0: not measured)
	readAll          time.Duration // time to read every config's token once
	newPID           bool          // whether the reload started a new plugin process
}

// scalePhase grows one bankauth mount to each config count in turn and
// measures it. The mount is alone on its own Vault, so that the plugin
// process serves nothing else.
func (b *bench) scalePhase() error {
	s, err := b.startVault(b.o.scaleStorage, true)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Mount("bankauth", "scale"); err != nil {
		return err
	}
	// The null plugin's RSS is the floor: the same SDK, gRPC and Go runtime,
	// no state.
	if _, err := s.MustCLI("secrets", "enable", "-path=null", "null"); err != nil {
		return err
	}
	if _, err := get(b.client, url(s, "null/token/t"), s.RootToken); err != nil {
		return err
	}
	if pid, err := pluginPID(s.PID(), nullBinary); err != nil {
		return err
	} else if b.rep.nullRSS, err = rssMiB(pid); err != nil {
		return err
	}
	provider := emulator.Rakbank
	b.emu.SetTTL(provider, time.Hour)
	// A second mount that keeps one config, read in turn with the scale
	// mount at every size, so that the latency ratio is measured side by
	// side rather than minutes apart.
	if err := s.Mount("bankauth", "scale-base"); err != nil {
		return err
	}
	if err := b.configure(s, "scale-base/config/cfg-0", provider, nil); err != nil {
		return err
	}
	if _, err := get(b.client, url(s, "scale-base/token/cfg-0"), s.RootToken); err != nil {
		return err
	}
	have := 0
	for _, n := range b.o.scale {
		log.Printf("scale: writing configs %d..%d", have, n-1)
		if err := b.writeConfigs(s, provider, have, n); err != nil {
			return err
		}
		have = max(have, n)
		row, err := b.measureScale(s, n)
		if err != nil {
			return err
		}
		log.Printf("scale: %d configs: reload %v, first read %v, p50 %v, rss %.1f MiB (all read: %.1f MiB)",
			n, row.reload, row.firstRead, row.p50, row.rssFresh, row.rssAll)
		b.rep.scale = append(b.rep.scale, row)
	}
	return nil
}

// writeConfigs writes scale/config/cfg-<i> for i in [from, to) with 32
// writers.
func (b *bench) writeConfigs(s *vaulttest.Server, provider string, from, to int) error {
	return parallel(from, to, 32, func(i int) error {
		return b.configure(s, fmt.Sprintf("scale/config/cfg-%d", i), provider, nil)
	})
}

// parallel runs f(i) for i in [from, to) on workers goroutines and returns
// the first error.
func parallel(from, to, workers int, f func(int) error) error {
	var next atomic.Int64
	next.Store(int64(from))
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func (b *bench) measureScale(s *vaulttest.Server, n int) (scaleRow, error) {
	row := scaleRow{configs: n}
	one := url(s, "scale/token/cfg-0")
	if _, err := get(b.client, one, s.RootToken); err != nil { // cache and store one token
		return row, err
	}
	oldPID, _ := pluginPID(s.PID(), vaulttest.PluginBinary)
	// One reload is one sample of a few hundred milliseconds; the median of
	// rounds of them says what mounting costs.
	var reloads, firstReads []time.Duration
	for range max(b.o.rounds, 1) {
		t0 := time.Now()
		if _, err := s.Client.Sys().ReloadPlugin(&api.ReloadPluginInput{Mounts: []string{"scale/"}}); err != nil {
			return row, fmt.Errorf("reload: %w", err)
		}
		reloads = append(reloads, time.Since(t0))
		t0 = time.Now()
		if _, err := get(b.client, one, s.RootToken); err != nil {
			return row, err
		}
		firstReads = append(firstReads, time.Since(t0))
	}
	row.reload, row.firstRead = percentile(reloads, 50), percentile(firstReads, 50)
	pid, err := pluginPID(s.PID(), vaulttest.PluginBinary)
	if err != nil {
		return row, err
	}
	row.newPID = pid != oldPID
	if row.rssFresh, err = rssMiB(pid); err != nil {
		return row, err
	}
	base := url(s, "scale-base/token/cfg-0")
	var acc, baseAcc loadResult
	for r := 0; r < b.o.rounds; r++ {
		if r%2 == 0 {
			acc.add(closedLoop(b.client, one, s.RootToken, 1, b.o.cell))
			baseAcc.add(closedLoop(b.client, base, s.RootToken, 1, b.o.cell))
		} else {
			baseAcc.add(closedLoop(b.client, base, s.RootToken, 1, b.o.cell))
			acc.add(closedLoop(b.client, one, s.RootToken, 1, b.o.cell))
		}
	}
	if acc.errors > 0 || baseAcc.errors > 0 {
		return row, fmt.Errorf("cached reads: %d errors: %v %v", acc.errors+baseAcc.errors, acc.firstErr, baseAcc.firstErr)
	}
	row.p50, row.p99 = percentile(acc.latencies, 50), percentile(acc.latencies, 99)
	row.baseP50, row.baseP99 = percentile(baseAcc.latencies, 50), percentile(baseAcc.latencies, 99)
	if b.o.scaleReadAll {
		t0 := time.Now()
		err := parallel(0, n, 32, func(i int) error {
			_, err := get(b.client, url(s, fmt.Sprintf("scale/token/cfg-%d", i)), s.RootToken)
			return err
		})
		if err != nil {
			return row, err
		}
		row.readAll = time.Since(t0)
		if row.rssAll, err = rssMiB(pid); err != nil {
			return row, err
		}
		// Right after the burst of fetches the heap still holds their
		// garbage and the heap goal they raised; the runtime collects
		// at least every two minutes and then returns what it does not need.
		if b.o.scaleSettle > 0 && n > 1 {
			log.Printf("scale: %d configs: waiting %v for the plugin's memory to settle", n, b.o.scaleSettle)
			time.Sleep(b.o.scaleSettle)
			if row.rssSettled, err = rssMiB(pid); err != nil {
				return row, err
			}
		}
	}
	return row, nil
}
