package bankauth

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
)

// BenchmarkMetricsAt10kConfigs reports what per-config metrics cost with
// 10,000 configs that each made one bank request and one read: heap held
// by the entries and their figures, and the size and render time of one
// scrape.
//
//	go test -run '^$' -bench MetricsAt10k -benchtime 3x .
func BenchmarkMetricsAt10kConfigs(b *testing.B) {
	const configs = 10_000
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		bk := newBackend()
		for i := range configs {
			e := bk.entryFor(fmt.Sprintf("cfg-%05d", i))
			o := bk.observerFor("rakbank", e)
			o.BankRequest(engine.RequestEvent{Provider: "rakbank", Step: "token", Status: 200,
				Latency: 40 * time.Millisecond, Attempt: 1, Outcome: engine.Outcome2xx})
			o.FetchDone(nil)
			e.stats.cacheHits.Add(1)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		start := time.Now()
		body, err := bk.metrics.exposition()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(len(body))/(1<<20), "scrape-MiB")
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "scrape-ms")
		runtime.KeepAlive(bk)
	}
}
