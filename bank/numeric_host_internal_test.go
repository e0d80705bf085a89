package bank

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/connectproxy"
	"golang.org/x/net/http/httpproxy"
)

// numericHostsInternal mirrors numeric_host_test.go's list: IPv4 addresses
// in the forms inet_aton reads, which a proxy's resolver would map to
// loopback and link-local addresses.
var numericHostsInternal = []string{"2130706433", "0177.0.0.1", "127.1", "0x7f.1", "169.254.43518", "127.0.0.1.", "99999999999"}

// A stored config from an earlier release, whose host ends in a number, is
// refused when sent, through a proxy too (where no local resolver checks
// the address): the proxy is never asked, and the error does not quote the
// host.
func TestEgressRefusesNumericHostsThroughProxy(t *testing.T) {
	proxy := connectproxy.Start(func(string) string { return "127.0.0.1:1" })
	defer proxy.Close()
	for _, p := range []EgressPolicy{{}, {AllowLoopback: true}} {
		eg, err := NewEgressVia(p, &httpproxy.Config{HTTPSProxy: proxy.URL})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range numericHostsInternal {
			u := &url.URL{Scheme: "https", Host: h, Path: "/token"}
			if err := eg.checkURL(u); err == nil || strings.Contains(err.Error(), h) || !strings.Contains(err.Error(), "IPv4") {
				t.Errorf("checkURL %s (%v): err = %v, want a refusal that does not quote the host", h, p, err)
			}
			req, _ := http.NewRequest(http.MethodPost, u.String(), nil)
			if _, err := eg.proxyFor(req); err == nil || strings.Contains(err.Error(), h) {
				t.Errorf("proxyFor %s (%v): err = %v, want a refusal that does not quote the host", h, p, err)
			}
			// The whole client: a config that passed an earlier release's
			// checks.
			cfg := &Config{Provider: "oauth2", Settings: map[string]string{"token_url": "https://bank.example/token", "client_id": "c"},
				Secrets: map[string]string{"client_secret": "s"}}
			c, err := NewClient(cfg, nil, WithEgress(eg))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Settings["token_url"] = u.String()
			_, err = c.Fetch(context.Background(), nil)
			c.Close()
			if err == nil || strings.Contains(err.Error(), h) || !strings.Contains(err.Error(), "egress policy refuses") {
				t.Errorf("fetch %s (%v): err = %v, want an egress refusal that does not quote the host", h, p, err)
			}
		}
	}
	if got := proxy.Targets(); len(got) != 0 {
		t.Fatalf("the proxy was asked for %v", got)
	}
}

// The dialer refuses a host that ends in a number without resolving it
// (direct connections; cgo's getaddrinfo reads these forms too).
func TestEgressDialerRefusesNumericHosts(t *testing.T) {
	eg, _ := NewEgressVia(EgressPolicy{AllowLoopback: true}, nil)
	for _, h := range numericHostsInternal {
		conn, err := eg.dialContext(context.Background(), "tcp", h+":443")
		if conn != nil {
			conn.Close()
		}
		if _, ok := asEgressError(err); !ok || strings.Contains(err.Error(), h) {
			t.Errorf("dial %s: err = %v, want an egress refusal that does not quote the host", h, err)
		}
	}
}

// parseInetAton reads the forms inet_aton reads, so the refusal can say
// what kind of address a host means.
func TestParseInetAton(t *testing.T) {
	for host, want := range map[string]string{
		"2130706433": "127.0.0.1", "0177.0.0.1": "127.0.0.1", "127.1": "127.0.0.1", "0x7f.1": "127.0.0.1",
		"0x7F000001": "127.0.0.1", "169.254.43518": "169.254.169.254", "0251.0376.0251.0376": "169.254.169.254",
		"127.0.0.1.": "127.0.0.1", "10.0x": "10.0.0.0", "1.2.3.4": "1.2.3.4",
		"1.2.3.09": "", "99999999999": "", "256.1": "", "1.2.3.4.5": "", "1.2.3.256": "", "1..2": "", "0x1g": "", "-1": "",
	} {
		a, ok := parseInetAton(host)
		if got := a.String(); ok != (want != "") || ok && got != want {
			t.Errorf("%s: %s %v, want %q", host, got, ok, want)
		}
	}
	if r := numericHostReason("169.254.43518"); !strings.Contains(r, "link-local") {
		t.Errorf("reason %q does not say link-local", r)
	}
	if err := (EgressPolicy{AllowedHosts: []string{"127.1"}}).Validate(); err == nil || strings.Contains(err.Error(), "127.1") {
		t.Errorf("allowed_hosts 127.1: %v, want a refusal that does not quote it", err)
	}
}
