package bank_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/connectproxy"
	"golang.org/x/net/http/httpproxy"
)

// countingEmu is an emulator that counts the requests that reached it.
func countingEmu(t *testing.T, tls bool) (*emulator.Server, *httptest.Server, *atomic.Int64) {
	t.Helper()
	emu := emulator.New(emulator.Options{})
	var n atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); emu.ServeHTTP(w, r) })
	srv := httptest.NewUnstartedServer(h)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return emu, srv, &n
}

func caPEM(srv *httptest.Server) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

func fetchWith(t *testing.T, cfg *bank.Config, eg *bank.Egress) error {
	t.Helper()
	c, err := bank.NewClient(cfg, nil, bank.WithEgress(eg))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer c.Close()
	_, err = c.Fetch(context.Background(), nil)
	return err
}

// The production default refuses loopback, link-local and unspecified
// addresses and plain http, before anything is sent.
func TestEgressDefaultRefusesLocalAddresses(t *testing.T) {
	_, plain, plainHits := countingEmu(t, false)
	_, tlsSrv, tlsHits := countingEmu(t, true)
	port := tlsSrv.URL[strings.LastIndex(tlsSrv.URL, ":"):]
	strict := mustEgress(bank.EgressPolicy{})
	cases := map[string]struct {
		base, want string
	}{
		"plain http to loopback":   {plain.URL, "plain http"},
		"https to 127.0.0.1":       {tlsSrv.URL, "loopback"},
		"https to localhost":       {"https://localhost" + port, "loopback"},
		"https to [::1]":           {"https://[::1]" + port, "loopback"},
		"https to IPv4-mapped ::1": {"https://[::ffff:127.0.0.1]" + port, "loopback"},
		"cloud metadata":           {"https://169.254.169.254", "link-local"},
		"IPv6 link-local":          {"https://[fe80::1]", "link-local"},
		"unspecified":              {"https://0.0.0.0" + port, "unspecified"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := configFor(t, emulator.Etranzact, c.base)
			cfg.CACert = caPEM(tlsSrv)
			// Literal addresses where no bank lives are refused already
			// when the config is validated; the rest when sent.
			err := cfg.Validate()
			if err == nil {
				err = fetchWith(t, cfg, strict)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), "egress policy refuses") && !strings.Contains(err.Error(), "where no bank lives") {
				t.Fatalf("err = %v, want an egress refusal naming %q", err, c.want)
			}
		})
	}
	if plainHits.Load()+tlsHits.Load() != 0 {
		t.Fatalf("the banks got %d requests", plainHits.Load()+tlsHits.Load())
	}
}

// The refusal comes at dial time, on the address a name resolves to (the
// system's resolver: localhost is 127.0.0.1), so no name, and no DNS
// answer that changes between check and use, gets around it.
func TestEgressChecksResolvedAddress(t *testing.T) {
	_, tlsSrv, hits := countingEmu(t, true)
	port := tlsSrv.URL[strings.LastIndex(tlsSrv.URL, ":"):]
	cfg := configFor(t, emulator.Etranzact, "https://localhost"+port)
	cfg.CACert = caPEM(tlsSrv)
	err := fetchWith(t, cfg, mustEgress(bank.EgressPolicy{}))
	if err == nil || !strings.Contains(err.Error(), "egress policy refuses localhost (127.0.0.1)") {
		t.Fatalf("err = %v, want a dial-time refusal naming the resolved address", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the bank got %d requests", hits.Load())
	}
}

// allow_loopback lets development talk to a local emulator; allowed_hosts
// then narrows where requests may go, by name or CIDR.
func TestEgressAllowLoopbackAndAllowedHosts(t *testing.T) {
	_, srv, _ := countingEmu(t, false)
	cfg := configFor(t, emulator.Etranzact, srv.URL)
	if err := fetchWith(t, cfg, mustEgress(bank.EgressPolicy{AllowLoopback: true})); err != nil {
		t.Fatalf("allow_loopback: %v", err)
	}
	if err := fetchWith(t, cfg, mustEgress(bank.EgressPolicy{AllowLoopback: true, AllowedHosts: []string{"127.0.0.0/8"}})); err != nil {
		t.Fatalf("allowed by CIDR: %v", err)
	}
	err := fetchWith(t, cfg, mustEgress(bank.EgressPolicy{AllowLoopback: true, AllowedHosts: []string{"api.bank.example", "203.0.113.0/24"}}))
	if err == nil || !strings.Contains(err.Error(), "not in allowed_hosts") {
		t.Fatalf("err = %v, want not in allowed_hosts", err)
	}
	for _, bad := range []string{"10.0.0.0/33", "bank example", "*.", "http://bank.example"} {
		if err := (bank.EgressPolicy{AllowedHosts: []string{bad}}).Validate(); err == nil || !strings.Contains(err.Error(), "allowed_hosts") {
			t.Errorf("%q: err = %v, want an allowed_hosts error", bad, err)
		}
	}
}

// A policy change applies to an existing client at once, even to a host
// it has a pooled keep-alive connection to.
func TestEgressChangeAppliesToExistingClients(t *testing.T) {
	_, srv, _ := countingEmu(t, false)
	eg := mustEgress(bank.EgressPolicy{AllowLoopback: true})
	c, err := bank.NewClient(configFor(t, emulator.Etranzact, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)), nil, bank.WithEgress(eg))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Fetch(context.Background(), nil); err != nil {
		t.Fatalf("before the change: %v", err)
	}
	if err := eg.Set(bank.EgressPolicy{AllowLoopback: true, AllowedHosts: []string{"10.0.0.0/8"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "not in allowed_hosts") {
		t.Fatalf("after the change: err = %v, want not in allowed_hosts", err)
	}
	if err := eg.Set(bank.EgressPolicy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "egress policy refuses") {
		t.Fatalf("after allow_loopback off: err = %v", err)
	}
}

// Requests go through the CONNECT proxy that HTTPS_PROXY names; the proxy
// on loopback is reachable though loopback is refused for banks, and the
// bank's name travels to the proxy, which resolves it. allowed_hosts still
// decides which names may be asked for.
func TestEgressThroughConnectProxy(t *testing.T) {
	emu, upstream, hits := countingEmu(t, true)
	bankAddr := strings.TrimPrefix(upstream.URL, "https://")
	proxy := connectproxy.Start(func(string) string { return bankAddr })
	defer proxy.Close()
	// httptest's certificate is valid for example.com: the proxy routes
	// that name to the test bank.
	cfg := configFor(t, emulator.Etranzact, "https://example.com")
	cfg.CACert = caPEM(upstream)
	pc := &httpproxy.Config{HTTPSProxy: proxy.URL}

	c, err := bank.NewClient(cfg, nil, bank.WithEgress(mustEgressVia(t, bank.EgressPolicy{}, pc)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tok, err := c.Fetch(context.Background(), nil)
	if err != nil {
		t.Fatalf("fetch through the proxy: %v", err)
	}
	if !emu.TokenValid(emulator.Etranzact, tok.AccessToken) {
		t.Fatal("the bank does not know the token")
	}
	if got := proxy.Targets(); len(got) == 0 || got[0] != "example.com:443" {
		t.Fatalf("proxy saw %v, want CONNECT example.com:443", got)
	}

	before := hits.Load()
	err = fetchWith(t, cfg, mustEgressVia(t, bank.EgressPolicy{AllowedHosts: []string{"api.bank.example"}}, pc))
	if err == nil || !strings.Contains(err.Error(), "not in allowed_hosts") {
		t.Fatalf("err = %v, want not in allowed_hosts", err)
	}
	if hits.Load() != before || len(proxy.Targets()) != 1 {
		t.Fatalf("a refused request reached the proxy or the bank")
	}
	if err := fetchWith(t, cfg, mustEgressVia(t, bank.EgressPolicy{AllowedHosts: []string{"*.com"}}, pc)); err != nil {
		t.Fatalf("allowed by name pattern: %v", err)
	}
	// A host the proxy does not serve (NO_PROXY; loopback names always)
	// is dialled direct, where the resolved-address check applies.
	direct := &httpproxy.Config{HTTPSProxy: proxy.URL, NoProxy: "example.com"}
	cfg.BaseURL = "https://localhost" + upstream.URL[strings.LastIndex(upstream.URL, ":"):]
	if err := fetchWith(t, cfg, mustEgressVia(t, bank.EgressPolicy{}, direct)); err == nil || !strings.Contains(err.Error(), "(127.0.0.1)") {
		t.Fatalf("NO_PROXY host: err = %v, want a dial-time refusal", err)
	}
}

func mustEgressVia(t *testing.T, p bank.EgressPolicy, pc *httpproxy.Config) *bank.Egress {
	t.Helper()
	e, err := bank.NewEgressVia(p, pc)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
