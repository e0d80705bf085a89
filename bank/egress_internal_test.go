package bank

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// loopbackEgress lets internal tests' clients talk to httptest banks on
// 127.0.0.1.
var loopbackEgress, _ = NewEgressVia(EgressPolicy{AllowLoopback: true}, nil)

// The dialer refuses, before connecting, every address the policy refuses,
// whatever the name resolved from (here literal addresses, as a resolver
// would hand them to net.Dialer.Control).
func TestEgressDialerRefusesAddresses(t *testing.T) {
	strict, _ := NewEgressVia(EgressPolicy{}, nil)
	// IPv4 only: a machine without IPv6 fails to make an IPv6 socket
	// before Control runs. IPv6 addresses are checked by addrReason below.
	for addr, want := range map[string]string{
		"169.254.169.254:80": "link-local",
		"0.0.0.0:443":        "unspecified",
		"127.0.0.1:443":      "loopback",
		"224.0.0.1:443":      "multicast",
		"localhost:1":        "loopback",
	} {
		conn, err := strict.dialContext(context.Background(), "tcp", addr)
		if conn != nil {
			conn.Close()
		}
		ee, ok := asEgressError(err)
		if !ok || !strings.Contains(ee.Reason, want) {
			t.Errorf("%s: err = %v, want an egress refusal (%s)", addr, err, want)
		}
	}
}

func TestEgressAddressRules(t *testing.T) {
	cp, _ := EgressPolicy{}.compile()
	for addr, want := range map[string]string{
		"::1": "loopback", "fe80::1": "link-local", "::": "unspecified", "ff02::1": "multicast",
		"::ffff:169.254.169.254": "link-local", "::ffff:127.0.0.1": "loopback", "0.1.2.3": "unspecified",
		"255.255.255.255": "broadcast", "203.0.113.7": "", "2001:db8::1": "", "10.1.2.3": "",
	} {
		got := cp.addrReason(netip.MustParseAddr(addr), false)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}
