package main

import (
	"strings"
	"testing"
	"time"
)

func TestReportJudgesGoals(t *testing.T) {
	o := options{storages: []string{"inmem"}, concurrency: []int{1}, rounds: 1, cell: time.Second,
		scaleStorage: "inmem", soakStorage: "inmem", soakTTL: time.Minute}
	r := newReport(o)
	cell := func(name string, lease bool, perSec float64, p99 time.Duration) readCell {
		return readCell{target: target{name: name, lease: lease}, conc: 1, perSec: perSec, p50: p99 / 2, p99: p99}
	}
	r.reads["inmem"] = []readCell{
		cell("kv-v2", false, 3000, time.Millisecond),
		cell("null, lease", true, 1000, 2*time.Millisecond),
		cell("bankauth, lease", true, 950, 3*time.Millisecond), // reads ok, p99 1.5x: missed
		cell("null, no lease", false, 1200, 2*time.Millisecond),
		cell("bankauth, no lease", false, 1000, 2*time.Millisecond), // reads 0.83x: missed
	}
	r.cold["inmem"] = []coldResult{{lease: true, readers: 500, bankRequests: 1, distinct: 1, latency: time.Second, slowest: 1100 * time.Millisecond}}
	r.scale = []scaleRow{{configs: 1, reload: 100 * time.Millisecond, p50: time.Millisecond, baseP50: time.Millisecond, rssFresh: 27},
		{configs: 10000, reload: 105 * time.Millisecond, p50: 1050 * time.Microsecond, baseP50: time.Millisecond, rssFresh: 28, rssAll: 70, rssSettled: 39}}
	r.soak = &soakResult{readers: 64, duration: 10 * time.Minute, issued: 12, bankRequests: 13, readersExpired: 0}
	var out strings.Builder
	r.print(&out, 2)
	text := out.String()
	for _, want := range []string{
		"| inmem, bankauth, lease, c=1: reads/s >= 0.9x null | 0.95x | yes |",
		"| inmem, bankauth, lease, c=1: p99 <= 1.2x null | 1.50x | **no** |",
		"| inmem, bankauth, no lease, c=1: reads/s >= 0.9x null | 0.83x | **no** |",
		"| inmem cold start, lease=true, 500 readers: 1 bank request | 1 (errors 0) | yes |",
		"| read latency at 10000 configs within 10% of 1 config | p50 1.05x | yes |",
		"| plugin RSS at 10000 configs < 64 MiB (mounted, one token read) | 28.0 MiB | yes |",
		"| plugin RSS at 10000 configs < 64 MiB with every token cached (stress case) | 70.0 MiB | **no** |",
		"| mount time at 10000 configs within 10% of 1 config | 1.05x | yes |",
		"| plugin RSS at 10000 configs < 40 MiB with every token cached (settled) | 39.0 MiB | yes |",
		"| plugin RSS at 10000 configs < 40 MiB right after fetching every token | 70.0 MiB | **no** |",
		"| 10000 | 105.00 | 0.00 | 1.05 | 0.00 | 1.00 / 0.00 | 1.05x | 28.0 | 70.0 | 39.0 | 0.00 |",
		"| soak: 1 bank request per token | 1.08 (13 requests, 12 tokens) | **no** |",
		"| soak: 0 readers saw an expired token | 0 | yes |",
		"8 of 13 goals met",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}
