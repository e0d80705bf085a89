package engine

import (
	"context"
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
	for addr, want := range map[string]string{
		"169.254.169.254:80":    "link-local",
		"[fe80::1%lo]:443":      "link-local",
		"0.0.0.0:443":           "unspecified",
		"127.0.0.1:443":         "loopback",
		"[::1]:443":             "loopback",
		"224.0.0.1:443":         "multicast",
		"localhost:1":           "loopback",
		"[::ffff:a9fe:a9fe]:80": "link-local",
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
