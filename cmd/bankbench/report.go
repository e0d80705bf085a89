package main

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// Goals from the issue.
const (
	goalReadRatio   = 0.9  // bankauth reads/s >= 0.9 x the null plugin's
	goalP99Ratio    = 1.2  // bankauth p99 <= 1.2 x the null plugin's
	goalScaleRatio  = 1.10 // read latency at the most configs <= 1.1 x at the fewest
	goalRSSMiB      = 64.0 // plugin RSS at the most configs
	goalColdBankReq = 1
)

// goalRSSAllMiB are issue 10's bounds on plugin RSS with every token cached,
// by config count.
var goalRSSAllMiB = map[int]float64{10_000: 40, 100_000: 160}

// report collects every phase's figures and prints them as Markdown.
type report struct {
	o                 options
	started, finished time.Time
	reads             map[string][]readCell
	cold              map[string][]coldResult
	scale             []scaleRow
	nullRSS           float64 // MiB, the null plugin's process in the scale phase
	soak              *soakResult
	consent           *consentResult
}

func newReport(o options) *report {
	return &report{o: o, started: time.Now(), reads: map[string][]readCell{}, cold: map[string][]coldResult{}}
}

// goalLine is one goal and where the run left it.
type goalLine struct {
	goal, figure string
	met          bool
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func mark(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func (r *report) print(w io.Writer, cpus int) {
	var goals []goalLine
	fmt.Fprintf(w, "# bankauth benchmark\n\n")
	fmt.Fprintf(w, "- run: %s to %s UTC (%s)\n", r.started.UTC().Format("2006-01-02 15:04"), r.finished.UTC().Format("15:04"),
		r.finished.Sub(r.started).Round(time.Second))
	fmt.Fprintf(w, "- machine: %d CPUs, %s/%s, %s; Vault %s\n", cpus, runtime.GOOS, runtime.GOARCH, runtime.Version(), vaultVersion())
	fmt.Fprintf(w, "- command: `%s`\n", r.o.commandString)
	fmt.Fprintf(w, "- plugins built without -race; Vault log level warn; load generator and bank emulator in the harness process, all on loopback.\n\n")

	if len(r.reads) > 0 {
		fmt.Fprintf(w, "## 1. Cached token reads over HTTP\n\n")
		fmt.Fprintf(w, "Closed loop, `GET /v1/<path>` with the root token, %d round(s) of %v per cell, targets interleaved. "+
			"Ratios compare bankauth with the null plugin in the same lease mode (goal: reads/s >= %.1fx, p99 <= %.1fx).\n\n",
			r.o.rounds, r.o.cell, goalReadRatio, goalP99Ratio)
		for _, st := range r.o.storages {
			cells := r.reads[st]
			if len(cells) == 0 {
				continue
			}
			fmt.Fprintf(w, "### %s storage\n\n", st)
			fmt.Fprintf(w, "| target | conc | reads/s | p50 ms | p99 ms | errors | reads/s vs KV v2 | reads/s vs null | p99 vs null | goals met |\n")
			fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
			for _, c := range cells {
				kv := findCell(cells, "kv-v2", c.conc)
				row := fmt.Sprintf("| %s | %d | %.0f | %s | %s | %d | %.2fx |", c.target.name, c.conc, c.perSec, ms(c.p50), ms(c.p99),
					c.errors, ratio(c.perSec, kv.perSec))
				if strings.HasPrefix(c.target.name, "bankauth") {
					null := findCell(cells, strings.Replace(c.target.name, "bankauth", "null", 1), c.conc)
					tr, pr := ratio(c.perSec, null.perSec), ratio(float64(c.p99), float64(null.p99))
					ok := tr >= goalReadRatio && pr <= goalP99Ratio && c.errors == 0
					row += fmt.Sprintf(" %.2fx | %.2fx | %s |", tr, pr, mark(ok))
					goals = append(goals,
						goalLine{fmt.Sprintf("%s, %s, c=%d: reads/s >= %.1fx null", st, c.target.name, c.conc, goalReadRatio), fmt.Sprintf("%.2fx", tr), tr >= goalReadRatio},
						goalLine{fmt.Sprintf("%s, %s, c=%d: p99 <= %.1fx null", st, c.target.name, c.conc, goalP99Ratio), fmt.Sprintf("%.2fx", pr), pr <= goalP99Ratio})
				} else {
					row += " | | |"
				}
				fmt.Fprintln(w, row)
			}
			fmt.Fprintln(w)
			for _, p := range []string{"bankauth", "null"} {
				if d, ok := leaseCost(cells, p); ok {
					fmt.Fprintf(w, "- lease cost per read, %s (mean latency at c=1 with lease minus without): %.0f µs", p, float64(d)/float64(time.Microsecond))
					last := r.o.concurrency[len(r.o.concurrency)-1]
					l, n := findCell(cells, p+", lease", last), findCell(cells, p+", no lease", last)
					fmt.Fprintf(w, "; reads/s with lease / without at c=%d: %.2fx\n", last, ratio(l.perSec, n.perSec))
				}
			}
			for _, c := range cells {
				if c.lastErr != nil {
					fmt.Fprintf(w, "- first error, %s c=%d: %v\n", c.target.name, c.conc, c.lastErr)
				}
			}
			fmt.Fprintln(w)
		}
	}

	if len(r.cold) > 0 {
		fmt.Fprintf(w, "## 2. Cold start\n\n")
		fmt.Fprintf(w, "Readers of a token not yet cached, released together on connections opened beforehand; "+
			"the emulator answers the token request after its configured latency. Goal: exactly %d bank request.\n\n", goalColdBankReq)
		fmt.Fprintf(w, "| storage | lease | readers | bank requests | distinct tokens | errors | emulator latency ms | p50 ms | slowest ms | slowest / latency |\n")
		fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		var errs []string
		for _, st := range r.o.storages {
			for _, c := range r.cold[st] {
				fmt.Fprintf(w, "| %s | %t | %d | %d | %d | %d | %s | %s | %s | %.2fx |\n", st, c.lease, c.readers, c.bankRequests, c.distinct, c.errors,
					ms(c.latency), ms(c.p50), ms(c.slowest), ratio(float64(c.slowest), float64(c.latency)))
				goals = append(goals, goalLine{fmt.Sprintf("%s cold start, lease=%t, %d readers: %d bank request", st, c.lease, c.readers, goalColdBankReq),
					fmt.Sprintf("%d (errors %d)", c.bankRequests, c.errors), c.bankRequests == goalColdBankReq && c.errors == 0})
				if c.firstErr != nil {
					errs = append(errs, fmt.Sprintf("- first error (%s, lease=%t): %v", st, c.lease, c.firstErr))
				}
			}
		}
		if len(errs) > 0 {
			fmt.Fprintf(w, "\n%s\n", strings.Join(errs, "\n"))
		}
		fmt.Fprintln(w)
	}

	if len(r.scale) > 0 {
		fmt.Fprintf(w, "## 3. Scale (%s storage, one mount on its own Vault)\n\n", r.o.scaleStorage)
		fmt.Fprintf(w, "Mount time is the median of %d `sys/plugins/reload/backend` of the mount (Vault sets the plugin up anew), each followed by one token read "+
			"(its config and token come from storage), then cached reads of that token at c=1, %d rounds of %v, each round "+
			"alternating with the same reads on a second mount that holds one config (same Vault, same plugin process). "+
			"RSS is VmRSS of the plugin process (both mounts); 'settled' is %v after the last fetch, past the Go runtime's "+
			"two-minute periodic collection.\n\n", max(r.o.rounds, 1), r.o.rounds, r.o.cell, r.o.scaleSettle)
		fmt.Fprintf(w, "| configs | mount (reload) ms | first read ms | cached p50 ms | cached p99 ms | 1-config mount p50 / p99 ms | p50 vs 1 config | RSS after mount + 1 read MiB | RSS all tokens cached MiB | settled MiB | read all tokens s |\n")
		fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, row := range r.scale {
			all, settled, readAll := "-", "-", "-"
			if row.rssAll > 0 {
				all, readAll = fmt.Sprintf("%.1f", row.rssAll), fmt.Sprintf("%.2f", row.readAll.Seconds())
			}
			if row.rssSettled > 0 {
				settled = fmt.Sprintf("%.1f", row.rssSettled)
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s / %s | %.2fx | %.1f | %s | %s | %s |\n", row.configs, ms(row.reload), ms(row.firstRead),
				ms(row.p50), ms(row.p99), ms(row.baseP50), ms(row.baseP99), ratio(float64(row.p50), float64(row.baseP50)), row.rssFresh, all, settled, readAll)
		}
		if r.nullRSS > 0 {
			fmt.Fprintf(w, "\nFor reference, the null plugin's process (same SDK and runtime, no state) on the same Vault: %.1f MiB RSS.\n", r.nullRSS)
		}
		last := r.scale[len(r.scale)-1]
		sr := ratio(float64(last.p50), float64(last.baseP50))
		goals = append(goals, goalLine{fmt.Sprintf("read latency at %d configs within 10%% of 1 config", last.configs),
			fmt.Sprintf("p50 %.2fx", sr), sr <= goalScaleRatio})
		goals = append(goals, goalLine{fmt.Sprintf("plugin RSS at %d configs < %.0f MiB (mounted, one token read)", last.configs, goalRSSMiB),
			fmt.Sprintf("%.1f MiB", last.rssFresh), last.rssFresh < goalRSSMiB})
		if last.rssAll > 0 {
			goals = append(goals, goalLine{fmt.Sprintf("plugin RSS at %d configs < %.0f MiB with every token cached (stress case)", last.configs, goalRSSMiB),
				fmt.Sprintf("%.1f MiB", last.rssAll), last.rssAll < goalRSSMiB})
		}
		if first := r.scale[0]; len(r.scale) > 1 && first.reload > 0 {
			mr := ratio(float64(last.reload), float64(first.reload))
			goals = append(goals, goalLine{fmt.Sprintf("mount time at %d configs within 10%% of %d config", last.configs, first.configs),
				fmt.Sprintf("%.2fx", mr), mr <= goalScaleRatio})
		}
		for _, row := range r.scale {
			g, ok := goalRSSAllMiB[row.configs]
			if ok && row.rssSettled > 0 {
				goals = append(goals, goalLine{fmt.Sprintf("plugin RSS at %d configs < %.0f MiB with every token cached (settled)", row.configs, g),
					fmt.Sprintf("%.1f MiB", row.rssSettled), row.rssSettled < g})
			}
			if ok && row.rssAll > 0 {
				goals = append(goals, goalLine{fmt.Sprintf("plugin RSS at %d configs < %.0f MiB right after fetching every token", row.configs, g),
					fmt.Sprintf("%.1f MiB", row.rssAll), row.rssAll < g})
			}
		}
		fmt.Fprintln(w)
	}

	if s := r.soak; s != nil {
		fmt.Fprintf(w, "## 4. Soak (%s storage)\n\n", r.o.soakStorage)
		fmt.Fprintf(w, "%d readers for %v, each pausing %v between reads, against %v tokens (emulator latency %v, eTranzact: login then refresh grants). "+
			"'Refresh windows' span each token replacement: from %v before the bank request to %v after the bank's answer.\n\n",
			s.readers, s.duration.Round(time.Second), r.o.soakInterval, r.o.soakTTL, r.o.soakLatency, r.o.soakWindow, r.o.soakWindow)
		perToken := ratio(float64(s.bankRequests), float64(s.issued))
		fmt.Fprintf(w, "| reads | reads/s | errors | tokens seen | tokens issued | bank requests | requests per token | readers that saw an expired token | expired reads |\n")
		fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(w, "| %d | %.0f | %d | %d | %d | %d | %.2f | %d | %d |\n\n", s.reads, float64(s.reads)/s.duration.Seconds(), s.errors,
			s.distinct, s.issued, s.bankRequests, perToken, s.readersExpired, s.readsExpired)
		fmt.Fprintf(w, "| | windows | reads | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n")
		fmt.Fprintf(w, "| during token replacement | %d | %d | %s | %s |\n", s.windows, s.inside, ms(s.p50In), ms(s.p99In))
		fmt.Fprintf(w, "| outside | | %d | %s | %s |\n\n", s.outside, ms(s.p50Out), ms(s.p99Out))
		fmt.Fprintf(w, "- p99 during replacement / outside: %.2fx\n", ratio(float64(s.p99In), float64(s.p99Out)))
		fmt.Fprintf(w, "- bank requests per %v of soak time: %.2f (above 1 at one request per token, since tokens are replaced before they expire: in the background at 70%% of their life, or by a reader at 80%%)\n",
			r.o.soakTTL, ratio(float64(s.bankRequests), s.duration.Seconds()/r.o.soakTTL.Seconds()))
		if s.firstErr != nil {
			fmt.Fprintf(w, "- first error: %v\n", s.firstErr)
		}
		fmt.Fprintln(w)
		goals = append(goals,
			goalLine{"soak: 1 bank request per token", fmt.Sprintf("%.2f (%d requests, %d tokens)", perToken, s.bankRequests, s.issued), s.bankRequests == s.issued && s.issued > 0},
			goalLine{"soak: 0 readers saw an expired token", fmt.Sprint(s.readersExpired), s.readersExpired == 0})
	}

	goals = append(goals, r.printConsent(w)...)

	fmt.Fprintf(w, "## Goals\n\n| goal | figure | met |\n|---|---|---|\n")
	met := 0
	for _, g := range goals {
		if g.met {
			met++
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", g.goal, g.figure, mark(g.met))
	}
	fmt.Fprintf(w, "\n%d of %d goals met in this run.\n", met, len(goals))
}

func findCell(cells []readCell, name string, conc int) readCell {
	for _, c := range cells {
		if c.target.name == name && c.conc == conc {
			return c
		}
	}
	return readCell{}
}

func vaultVersion() string {
	bin, err := vaulttest.VaultBin()
	if err != nil {
		return "?"
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "?"
	}
	v := strings.TrimSpace(strings.TrimPrefix(string(out), "Vault "))
	v, _, _ = strings.Cut(v, ",") // the "built" date of a source build is meaningless
	return v
}
