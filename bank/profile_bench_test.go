package bank_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// BenchmarkFetch measures one token fetch per built-in provider against a
// loopback server that answers at once: the cost of building the
// request(s) and reading the answer, plus loopback HTTP. Run with
// go test -run '^$' -bench Fetch -benchmem ./bank/
func BenchmarkFetch(b *testing.B) {
	answer := `{"access_token":"at","token_type":"bearer","expires_in":60,"refresh_token":"rt","scope":"accounts"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == emulator.IsbankCodePath {
			io.WriteString(w, `{"code":"c1"}`)
			return
		}
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	for _, provider := range emulator.Providers {
		b.Run(provider, func(b *testing.B) {
			cfg := &bank.Config{Provider: provider, BaseURL: srv.URL, Settings: map[string]string{}, Secrets: map[string]string{}}
			p, _ := bank.Lookup(provider)
			for k, v := range emulator.ConfigData(provider, srv.URL, emulator.DefaultCredentials()) {
				for _, f := range p.Fields() {
					if f.Name == k && f.Secret {
						cfg.Secrets[k] = v.(string)
					} else if f.Name == k {
						cfg.Settings[k] = v.(string)
					}
				}
			}
			c, err := bank.NewClient(cfg, nil, loopback)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Fetch(context.Background(), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
