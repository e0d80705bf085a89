package bank

import (
	"net"
	"net/netip"
	"slices"
	"sync"
)

// A policy change must reach connections already made: an idle pooled
// connection would carry the next request to a host the new policy
// refuses without dialling again, and so would a busy HTTP/2 connection,
// which takes new requests beside the ones in flight. So Set gives the
// transports new pools (renewTransports) and closes every open connection,
// busy or idle, that the new policy refuses.

// egressConns are an Egress's open connections.
type egressConns struct {
	mu sync.Mutex
	m  map[*egressConn]struct{}
}

// egressConn is a connection an Egress dialled, with what its policy
// checks: the host name dialled and the address connected to, or, for a
// connection to the proxy, neither (the tunnel's target is the proxy's).
type egressConn struct {
	net.Conn
	e       *Egress
	host    string
	addr    netip.Addr
	proxied bool
	once    sync.Once
}

// Close closes the connection and forgets it.
func (c *egressConn) Close() error {
	c.once.Do(func() {
		c.e.conns.mu.Lock()
		delete(c.e.conns.m, c)
		c.e.conns.mu.Unlock()
	})
	return c.Conn.Close()
}

// track wraps a dialled connection so that a policy change can close it.
// One dialled under a policy that was replaced meanwhile is checked
// against the new one at once.
func (e *Egress) track(conn net.Conn, host string, proxied bool, dialledUnder *compiledPolicy) net.Conn {
	c := &egressConn{Conn: conn, e: e, host: host, proxied: proxied}
	if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil {
		c.addr = ap.Addr().Unmap()
	}
	e.conns.mu.Lock()
	if e.conns.m == nil {
		e.conns.m = map[*egressConn]struct{}{}
	}
	e.conns.m[c] = struct{}{}
	e.conns.mu.Unlock()
	if cp := e.policy.Load(); cp != dialledUnder && cp.refuses(c) {
		c.Close()
	}
	return c
}

// closeRefused closes every open connection that cp refuses.
func (e *Egress) closeRefused(cp *compiledPolicy) {
	e.conns.mu.Lock()
	var refused []*egressConn
	for c := range e.conns.m {
		if cp.refuses(c) {
			refused = append(refused, c)
		}
	}
	e.conns.mu.Unlock()
	for _, c := range refused {
		c.Close()
	}
}

// refuses reports whether cp would refuse to dial c. A connection to the
// proxy always counts as refused: where its tunnel leads is not known
// here, so a change closes it and its requests are retried on a new one.
func (cp *compiledPolicy) refuses(c *egressConn) bool {
	if c.proxied || !c.addr.IsValid() {
		return true
	}
	return cp.addrReason(c.addr, cp.nameAllowed(c.host)) != ""
}

// sameAs reports whether cp and o allow the same destinations.
func (cp *compiledPolicy) sameAs(o *compiledPolicy) bool {
	return o != nil && cp.AllowLoopback == o.AllowLoopback && slices.Equal(cp.AllowedHosts, o.AllowedHosts)
}
