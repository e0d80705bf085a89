package bank_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/connectproxy"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
	"golang.org/x/net/http/httpproxy"
)

// h2Bank is an HTTP/2 bank on 127.0.0.1 with a certificate for localhost.
// Its first request waits until release is closed (or its connection
// goes), keeping its connection busy; it counts requests and connections.
type h2Bank struct {
	srv      *httptest.Server
	ca       string
	requests atomic.Int64
	conns    atomic.Int64
	started  chan struct{} // closed when the first request arrived
	release  chan struct{}
	first    chan error // the first request's end: nil, or its context's error
}

// With names, its certificate is for those names instead of localhost.
func startH2Bank(t *testing.T, names ...string) *h2Bank {
	t.Helper()
	ca, err := testpki.NewCA("h2-bank")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server()
	if len(names) > 0 {
		leaf, err = ca.ServerFor(names...)
	}
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	hb := &h2Bank{ca: string(ca.CertPEM), started: make(chan struct{}), release: make(chan struct{}), first: make(chan error, 1)}
	emu := emulator.New(emulator.Options{})
	hb.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "want HTTP/2", http.StatusHTTPVersionNotSupported)
			return
		}
		if hb.requests.Add(1) == 1 {
			close(hb.started)
			select {
			case <-hb.release:
				hb.first <- nil
			case <-r.Context().Done():
				hb.first <- r.Context().Err()
				return
			}
		}
		emu.ServeHTTP(w, r)
	}))
	hb.srv.EnableHTTP2 = true
	hb.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	hb.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			hb.conns.Add(1)
		}
	}
	hb.srv.StartTLS()
	t.Cleanup(func() {
		select {
		case <-hb.release:
		default:
			close(hb.release)
		}
		hb.srv.Close()
	})
	return hb
}

// busyClient starts a fetch that keeps an HTTP/2 connection to the bank
// busy, by the name localhost (a name is checked where it is dialled, so
// only the dial-time check stands between a pooled connection and reuse),
// and returns the client and the fetch's result.
func (hb *h2Bank) busyClient(t *testing.T, eg *bank.Egress) (*bank.Client, chan error) {
	t.Helper()
	return hb.busyClientFor(t, eg, "https://localhost"+hb.srv.URL[strings.LastIndex(hb.srv.URL, ":"):])
}

func (hb *h2Bank) busyClientFor(t *testing.T, eg *bank.Egress, baseURL string) (*bank.Client, chan error) {
	t.Helper()
	cfg := configFor(t, emulator.Etranzact, baseURL)
	cfg.CACert = hb.ca
	c, err := bank.NewClient(cfg, nil, bank.WithEgress(eg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	done := make(chan error, 1)
	go func() { _, err := c.Fetch(context.Background(), nil); done <- err }()
	select {
	case <-hb.started:
	case err := <-done:
		t.Fatalf("the first fetch ended before it reached the bank: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the first fetch never reached the bank")
	}
	return c, done
}

// Narrowing the egress policy closes a busy HTTP/2 connection to a host it
// now refuses, and no later request goes over it: the next fetch is
// refused at dial time and never reaches the bank (issue 18: the busy
// connection stayed pooled and was reused).
func TestEgressChangeClosesBusyHTTP2Connections(t *testing.T) {
	hb := startH2Bank(t)
	eg := mustEgress(bank.EgressPolicy{AllowLoopback: true})
	c, busy := hb.busyClient(t, eg)

	if err := eg.Set(bank.EgressPolicy{AllowLoopback: true, AllowedHosts: []string{"10.0.0.0/8"}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Fetch(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "not in allowed_hosts") {
		t.Errorf("fetch after the change: err = %v, want not in allowed_hosts", err)
	}
	if n := hb.requests.Load(); n != 1 {
		t.Errorf("the bank got %d requests, want only the one in flight before the change", n)
	}
	// The busy connection itself was closed: its request ended without
	// being released.
	select {
	case err := <-hb.first:
		if err == nil {
			t.Error("the request in flight was answered after the change")
		}
	case <-time.After(10 * time.Second):
		t.Error("the connection in flight before the change is still open")
	}
	if err := <-busy; err == nil {
		t.Error("the fetch in flight during the change got a token")
	}
}

// A change that still allows the host leaves the request in flight alone,
// but later requests go over new connections, dialled and checked under
// the new policy.
func TestEgressChangeRedialsAllowedHosts(t *testing.T) {
	hb := startH2Bank(t)
	eg := mustEgress(bank.EgressPolicy{AllowLoopback: true})
	c, busy := hb.busyClient(t, eg)

	if err := eg.Set(bank.EgressPolicy{AllowLoopback: true, AllowedHosts: []string{"127.0.0.0/8"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), nil); err != nil {
		t.Fatalf("fetch after the change: %v", err)
	}
	if n := hb.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the fetch after the change used the connection made before it", n)
	}
	close(hb.release)
	if err := <-busy; err != nil {
		t.Errorf("the fetch in flight during the change: %v", err)
	}
	// Setting the same policy again is no change: connections stay.
	if err := eg.Set(bank.EgressPolicy{AllowLoopback: true, AllowedHosts: []string{"127.0.0.0/8"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), nil); err != nil {
		t.Fatalf("fetch after the same policy again: %v", err)
	}
	if n := hb.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: an unchanged policy dropped pooled connections", n)
	}
}

// Through a proxy too: a busy HTTP/2 tunnel to a host the new policy
// refuses is closed, and the next request is refused before the proxy is
// asked.
func TestEgressChangeClosesBusyProxiedConnections(t *testing.T) {
	hb := startH2Bank(t, "api.bank.example")
	bankAddr := strings.TrimPrefix(hb.srv.URL, "https://")
	proxy := connectproxy.Start(func(string) string { return bankAddr })
	defer proxy.Close()
	eg, err := bank.NewEgressVia(bank.EgressPolicy{AllowedHosts: []string{"api.bank.example"}}, &httpproxy.Config{HTTPSProxy: proxy.URL})
	if err != nil {
		t.Fatal(err)
	}
	c, busy := hb.busyClientFor(t, eg, "https://api.bank.example")

	if err := eg.Set(bank.EgressPolicy{AllowedHosts: []string{"other.bank.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "not in allowed_hosts") {
		t.Errorf("fetch after the change: err = %v, want not in allowed_hosts", err)
	}
	select {
	case err := <-hb.first:
		if err == nil {
			t.Error("the request in flight was answered after the change")
		}
	case <-time.After(10 * time.Second):
		t.Error("the tunnel in flight before the change is still open")
	}
	if err := <-busy; err == nil {
		t.Error("the fetch in flight during the change got a token")
	}
	if n, targets := hb.requests.Load(), proxy.Targets(); n != 1 || len(targets) != 1 {
		t.Errorf("the bank got %d requests and the proxy %v, want only the first", n, targets)
	}
}
