package bankauth

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/jonboulle/clockwork"
)

// BenchmarkMetricsAt10kConfigs reports what per-config metrics cost with
// 10,000 configs that each fetched one token from the emulator and were
// read once: heap held by the mount (the broker's state, the bank clients and
// the in-memory storage of configs and tokens), and the size and
// render time of one scrape.
//
//	go test -run '^$' -bench MetricsAt10k -benchtime 3x .
func BenchmarkMetricsAt10kConfigs(b *testing.B) {
	const configs = 10_000
	emu := emulator.New(emulator.Options{})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	ctx := context.Background()
	for range b.N {
		conf := logical.TestBackendConfig()
		conf.StorageView = &logical.InmemStorage{}
		bk, err := factoryWithClock(ctx, conf, clockwork.NewRealClock())
		if err != nil {
			b.Fatal(err)
		}
		data := emulator.ConfigData(emulator.Rakbank, srv.URL, emulator.DefaultCredentials())
		data["background_refresh_idle"] = 0
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range configs {
			name := fmt.Sprintf("cfg-%05d", i)
			for _, op := range []logical.Operation{logical.CreateOperation, logical.ReadOperation} {
				path, d := "config/"+name, data
				if op == logical.ReadOperation {
					path, d = "token/"+name, nil
				}
				resp, err := bk.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: d, Storage: conf.StorageView})
				if err != nil || resp.IsError() {
					b.Fatalf("%s %s: %v %v", op, path, err, resp)
				}
			}
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
		bk.Clean(ctx)
	}
}
