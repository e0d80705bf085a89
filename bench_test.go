package bankauth

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
)

// Handler benchmarks of the hot path, a read of a cached token, without
// Vault around it (cmd/bankbench measures through a real Vault). Profile
// with: go test -run '^$' -bench TokenRead -benchmem -cpuprofile cpu.out .
func BenchmarkTokenReadCached(b *testing.B) {
	for _, lease := range []bool{true, false} {
		name := "lease"
		if !lease {
			name = "nolease"
		}
		b.Run(name, func(b *testing.B) {
			conf := logical.TestBackendConfig()
			conf.StorageView = &logical.InmemStorage{}
			allowLoopback(b, conf.StorageView)
			lb, err := Factory(context.Background(), conf)
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(emulator.New(emulator.Options{}))
			defer srv.Close()
			data := emulator.ConfigData(emulator.Rakbank, srv.URL, emulator.DefaultCredentials())
			data["lease"] = lease
			ctx := context.Background()
			if _, err := lb.HandleRequest(ctx, &logical.Request{Operation: logical.CreateOperation, Path: "config/rak",
				Data: data, Storage: conf.StorageView}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := lb.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation,
						Path: "token/rak", Storage: conf.StorageView})
					if err != nil || resp.IsError() || (resp.Secret != nil) != lease {
						b.Fatalf("read: %v %v", resp, err)
					}
				}
			})
		})
	}
}
