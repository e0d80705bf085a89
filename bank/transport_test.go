package bank

import (
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

func transportCount() int {
	transports.Lock()
	defer transports.Unlock()
	return len(transports.m)
}

// Clients with the same CA bundle share one transport (one connection pool
// per bank host, however many configs); unreferenced, it lingers for the
// next client (clients are built per fetch), then is dropped.
func TestClientsShareTransportPerCABundle(t *testing.T) {
	_, pem, err := emulator.SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	newClient := func(ca string) *Client {
		t.Helper()
		c, err := NewClient(&Config{Provider: "etranzact", CACert: ca,
			Settings: map[string]string{"username": "u"}, Secrets: map[string]string{"password": "p"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := transportCount()
	a, b, c := newClient(""), newClient(""), newClient(string(pem))
	if a.http.Transport != b.http.Transport {
		t.Error("clients with the system roots do not share a transport")
	}
	if a.http.Transport == c.http.Transport {
		t.Error("clients with different CA bundles share a transport")
	}
	if n := transportCount() - before; n != 2 {
		t.Errorf("%d new transports, want 2", n)
	}
	a.Close()
	if n := transportCount() - before; n != 2 {
		t.Errorf("after one of two closed: %d new transports, want 2", n)
	}
	b.Close()
	c.Close()
	if d := newClient(""); d.http.Transport != a.http.Transport {
		t.Error("the next client did not get the lingering transport")
	} else {
		d.Close()
	}
	transports.Lock()
	sweepTransports(time.Now().Add(transportLinger + time.Second))
	transports.Unlock()
	if n := transportCount() - before; n > 0 {
		t.Errorf("after the linger: %d transports left, want none", n)
	}
	if d := newClient(""); d.http.Transport == a.http.Transport {
		t.Error("a dropped transport was handed out again")
	} else {
		d.Close()
	}
}
