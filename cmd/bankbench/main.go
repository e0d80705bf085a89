// Command bankbench measures bankauth on a real Vault, in one run, so that
// the figures can be compared as ratios on a noisy, shared machine:
//
//  1. cached token reads over HTTP (throughput, p50, p99) at several
//     concurrencies, with and without a lease, beside a KV v2 read of a
//     same-sized secret and the null plugin (cmd/vault-plugin-secrets-null,
//     the floor for any external plugin), on in-memory and raft storage;
//  2. cold start: many concurrent readers of a token not yet cached;
//  3. scale: 1, 1,000, 10,000 configs (read latency, plugin RSS, mount time);
//  4. soak: readers against short-lived tokens for minutes (bank requests per
//     token, expired tokens seen, p99 around token replacement vs outside);
//  5. consent: 1,000,000 consents stored on one config (seeded through
//     sys/raw): mount time and RSS against none stored, list pages, and
//     100,000 consents' tokens cached (RSS, reads/s beside the null plugin).
//
// It needs VAULT_BIN (make bench sets it) and prints a Markdown report to
// stdout; progress goes to stderr. The plugins are built without -race.
//
//	go run ./cmd/bankbench -short       # a smoke run of every phase, about a minute
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

const nullBinary = "vault-plugin-secrets-null"

// options are the harness's flags.
type options struct {
	storages       []string
	concurrency    []int
	cell           time.Duration
	rounds         int
	coldReaders    int
	coldLatency    time.Duration
	scale          []int
	scaleStorage   string
	scaleReadAll   bool
	scaleSettle    time.Duration
	soak           time.Duration
	soakReaders    int
	soakTTL        time.Duration
	soakLatency    time.Duration
	soakInterval   time.Duration
	soakWindow     time.Duration
	soakStorage    string
	consents       int
	consentTokens  int
	consentStorage string
	phases         map[string]bool
	short          bool
	commandString  string
}

func parseFlags() options {
	var o options
	storages := flag.String("storage", "inmem,raft", "storage backends for the read and cold-start phases: inmem, raft")
	conc := flag.String("concurrency", "1,8,64", "reader concurrencies of the read phase")
	flag.DurationVar(&o.cell, "cell", time.Second, "duration of one measurement cell (one target at one concurrency in one round)")
	flag.IntVar(&o.rounds, "rounds", 9, "rounds of the read phase; targets are interleaved in each round so drift hits them alike")
	flag.IntVar(&o.coldReaders, "cold-readers", 500, "concurrent readers of an uncached token")
	flag.DurationVar(&o.coldLatency, "cold-latency", 500*time.Millisecond, "emulator token latency in the cold-start phase")
	scale := flag.String("scale", "1,1000,10000", "config counts of the scale phase, ascending")
	flag.StringVar(&o.scaleStorage, "scale-storage", "inmem", "storage of the scale phase")
	flag.BoolVar(&o.scaleReadAll, "scale-read-all", true, "in the scale phase, also read every config's token once and measure RSS with all cached")
	flag.DurationVar(&o.scaleSettle, "scale-settle", 150*time.Second, "in the scale phase, after reading every token, wait this long without fetches and measure RSS again "+
		"(past the Go runtime's two-minute periodic collection; 0: skip; only above one config)")
	flag.DurationVar(&o.soak, "soak", 10*time.Minute, "soak duration")
	flag.IntVar(&o.soakReaders, "soak-readers", 64, "soak readers")
	flag.DurationVar(&o.soakTTL, "soak-ttl", 60*time.Second, "token lifetime the emulator grants during the soak")
	flag.DurationVar(&o.soakLatency, "soak-latency", 200*time.Millisecond, "emulator token latency during the soak")
	flag.DurationVar(&o.soakInterval, "soak-interval", 100*time.Millisecond, "pause of each soak reader between reads (0: back to back)")
	flag.DurationVar(&o.soakWindow, "soak-window", time.Second, "margin around each token replacement counted as 'during refresh'")
	flag.StringVar(&o.soakStorage, "soak-storage", "inmem", "storage of the soak phase")
	flag.IntVar(&o.consents, "consents", 1_000_000, "consents stored on one config in the consent phase")
	flag.IntVar(&o.consentTokens, "consent-tokens", 100_000, "consents whose tokens the consent phase reads (and caches)")
	flag.StringVar(&o.consentStorage, "consent-storage", "inmem", "storage of the consent phase")
	phases := flag.String("phases", "read,cold,scale,soak,consent", "phases to run")
	flag.BoolVar(&o.short, "short", false, "smoke run: tiny sizes and durations for every phase (explicit flags still win)")
	flag.Parse()

	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.short {
		shortDefaults := map[string]string{
			"storage": "inmem", "concurrency": "1,8", "cell": "300ms", "rounds": "1",
			"cold-readers": "50", "cold-latency": "200ms", "scale": "1,50", "soak": "12s",
			"soak-readers": "8", "soak-ttl": "5s", "soak-latency": "100ms", "soak-interval": "20ms",
			"soak-window": "500ms", "scale-settle": "0s", "consents": "3000", "consent-tokens": "500",
		}
		for name, v := range shortDefaults {
			if !set[name] {
				if err := flag.Set(name, v); err != nil {
					log.Fatal(err)
				}
			}
		}
	}
	o.storages = splitList(*storages)
	var err error
	if o.concurrency, err = intList(*conc); err != nil {
		log.Fatalf("-concurrency: %v", err)
	}
	if o.scale, err = intList(*scale); err != nil {
		log.Fatalf("-scale: %v", err)
	}
	o.phases = map[string]bool{}
	for _, p := range splitList(*phases) {
		o.phases[p] = true
	}
	o.commandString = "go run ./cmd/bankbench " + strings.Join(os.Args[1:], " ")
	return o
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func intList(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("bankbench: ")
	o := parseFlags()
	// Benchmarks measure the plugin as shipped: no race detector.
	os.Unsetenv("BANKAUTH_RACE")
	if _, err := vaulttest.VaultBin(); err != nil {
		log.Fatal(err)
	}
	log.Print("building plugins")
	pluginDir, _, err := vaulttest.BuildPlugin()
	if err != nil {
		log.Fatal(err)
	}
	if err := run(o, pluginDir); err != nil {
		os.RemoveAll(pluginDir)
		log.Fatal(err)
	}
	os.RemoveAll(pluginDir)
}

// run builds the null plugin, runs the phases and prints the report.
func run(o options, pluginDir string) error {
	nullSHA, err := vaulttest.BuildExtraPlugin(nullBinary)
	if err != nil {
		return err
	}
	emu := emulator.New(emulator.Options{TokenTTL: time.Hour})
	hs := httptest.NewServer(emu)
	defer hs.Close()

	b := &bench{o: o, emu: emu, emuURL: hs.URL, nullSHA: nullSHA, client: newHTTPClient()}
	rep := newReport(o)
	b.rep = rep
	if o.phases["read"] || o.phases["cold"] {
		for _, st := range o.storages {
			if err := b.readAndColdPhases(st); err != nil {
				return fmt.Errorf("%s: %w", st, err)
			}
		}
	}
	if o.phases["scale"] {
		if err := b.scalePhase(); err != nil {
			return fmt.Errorf("scale: %w", err)
		}
	}
	if o.phases["soak"] {
		if err := b.soakPhase(); err != nil {
			return fmt.Errorf("soak: %w", err)
		}
	}
	if o.phases["consent"] {
		if err := b.consentPhase(); err != nil {
			return fmt.Errorf("consent: %w", err)
		}
	}
	rep.finished = time.Now()
	rep.print(os.Stdout, runtime.NumCPU())
	return nil
}
