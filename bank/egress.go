package bank

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// Egress settings field names (the mount's settings path).
const (
	FieldAllowLoopback = "allow_loopback"
	FieldAllowedHosts  = "allowed_hosts"
)

// EgressPolicy is where a mount's bank requests may go. The zero value is
// the production default: any routable address, never loopback, link-local
// (169.254.0.0/16, fe80::/10, where cloud metadata services answer),
// unspecified (0.0.0.0/8, ::) or multicast, and plain http nowhere.
type EgressPolicy struct {
	// AllowLoopback permits loopback addresses (127.0.0.0/8, ::1), and
	// plain http to loopback hosts: for development and tests.
	AllowLoopback bool
	// AllowedHosts, when not empty, are the only destinations: host names
	// (exact, case-insensitive; "*.bank.example" matches every name under
	// bank.example) and CIDRs ("203.0.113.0/24", "2001:db8::/32") that the
	// resolved address must fall in.
	AllowedHosts []string
}

// compiledPolicy is an EgressPolicy parsed for matching.
type compiledPolicy struct {
	EgressPolicy
	names    map[string]bool
	suffixes []string // ".bank.example" for "*.bank.example"
	prefixes []netip.Prefix
}

func (p EgressPolicy) compile() (*compiledPolicy, error) {
	cp := &compiledPolicy{EgressPolicy: p, names: map[string]bool{}}
	for i, h := range p.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "":
			continue
		case strings.Contains(h, "/"):
			pfx, err := netip.ParsePrefix(h)
			if err != nil {
				return nil, fieldErr(FieldAllowedHosts, "entry %d is not a CIDR like 203.0.113.0/24", i+1)
			}
			cp.prefixes = append(cp.prefixes, pfx.Masked())
		case strings.HasPrefix(h, "*."):
			if !validHostName(h[2:]) {
				return nil, fieldErr(FieldAllowedHosts, "entry %d is not a host name pattern like *.bank.example", i+1)
			}
			cp.suffixes = append(cp.suffixes, h[1:])
		default:
			if addr, err := netip.ParseAddr(h); err == nil {
				cp.prefixes = append(cp.prefixes, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
				continue
			}
			if endsInNumber(h) { // an address, but not in dotted-decimal form: numeric_host.go
				return nil, fieldErr(FieldAllowedHosts, "an entry that ends in a number must be an IP address in dotted-decimal form or a CIDR, like 203.0.113.7 or 203.0.113.0/24")
			}
			if !validHostName(h) {
				return nil, fieldErr(FieldAllowedHosts, "entry %d is not a host name, an IP address or a CIDR", i+1)
			}
			cp.names[h] = true
		}
	}
	return cp, nil
}

// Validate checks the policy's allowed_hosts entries.
func (p EgressPolicy) Validate() error {
	_, err := p.compile()
	return err
}

func validHostName(h string) bool {
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func (cp *compiledPolicy) restricted() bool {
	return len(cp.names) > 0 || len(cp.suffixes) > 0 || len(cp.prefixes) > 0
}

// nameAllowed reports whether a host name is on the allow-list by name.
func (cp *compiledPolicy) nameAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if cp.names[host] {
		return true
	}
	for _, s := range cp.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// addrReason says why the policy refuses an address, or "" when it does
// not. byName is whether the host name was allowed by name.
func (cp *compiledPolicy) addrReason(a netip.Addr, byName bool) string {
	a = a.Unmap()
	switch {
	case a.IsUnspecified() || (a.Is4() && a.As4()[0] == 0):
		return "unspecified address"
	case a.IsLoopback():
		if !cp.AllowLoopback {
			return "loopback address (allow_loopback is off)"
		}
	case a.IsLinkLocalUnicast():
		return "link-local address (cloud metadata services live there)"
	case a.IsMulticast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "multicast or broadcast address"
	}
	if cp.restricted() && !byName {
		for _, p := range cp.prefixes {
			if p.Contains(a) {
				return ""
			}
		}
		return "not in allowed_hosts"
	}
	return ""
}

// EgressError is a request the egress policy refused. It is never worth a
// retry.
type EgressError struct {
	Host   string // the host the request was for
	Addr   string // the address it resolved to, when the refusal came at dial time
	Reason string
}

func (e *EgressError) Error() string {
	if e.Host == "" { // a host the error must not quote (numeric_host.go)
		return "egress policy refuses the request: " + e.Reason
	}
	where := e.Host
	if e.Addr != "" && e.Addr != e.Host {
		where += " (" + e.Addr + ")"
	}
	return "egress policy refuses " + where + ": " + e.Reason + "; see the mount's settings (allow_loopback, allowed_hosts)"
}

// Egress applies one mount's EgressPolicy to every bank request of its
// clients: the scheme and host before a request is sent, and the address
// each connection is dialled to after DNS resolution (so a name that
// resolves to a refused address, now or after a rebinding, is refused).
// Requests go through the proxy the plugin's environment names
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY): the proxy address itself is trusted
// (the Vault operator set it); the bank's host is then checked by name and
// literal address only, since the proxy resolves it. Set changes the policy
// for existing clients at once.
type Egress struct {
	policy     atomic.Pointer[compiledPolicy]
	proxy      func(*url.URL) (*url.URL, error)
	proxyAddrs map[string]bool
	conns      egressConns // open connections (egress_conns.go)
}

// NewEgress makes an Egress with policy p that uses the proxy named by the
// process environment now (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
func NewEgress(p EgressPolicy) (*Egress, error) {
	return NewEgressVia(p, httpproxy.FromEnvironment())
}

// NewEgressVia makes an Egress with policy p that uses the proxies of pc
// (nil: none).
func NewEgressVia(p EgressPolicy, pc *httpproxy.Config) (*Egress, error) {
	e := &Egress{proxyAddrs: map[string]bool{}}
	if err := e.Set(p); err != nil {
		return nil, err
	}
	if pc != nil {
		e.proxy = pc.ProxyFunc()
		for _, raw := range []string{pc.HTTPSProxy, pc.HTTPProxy} {
			if addr := proxyAddr(raw); addr != "" {
				e.proxyAddrs[addr] = true
			}
		}
	}
	return e, nil
}

// proxyAddr is the host:port a proxy URL is dialled at ("" when none).
func proxyAddr(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		if u, err = url.Parse("http://" + raw); err != nil {
			return ""
		}
	}
	if u.Port() != "" {
		return u.Host
	}
	port := map[string]string{"https": "443", "socks5": "1080", "socks5h": "1080"}[u.Scheme]
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Set replaces the policy; it applies to the next request of every client
// of e. When the policy changes, later requests go over new connections,
// and every open connection the new policy refuses, busy or idle, is
// closed (egress_conns.go).
func (e *Egress) Set(p EgressPolicy) error {
	cp, err := p.compile()
	if err != nil {
		return err
	}
	if old := e.policy.Swap(cp); cp.sameAs(old) || old == nil {
		return nil
	}
	renewTransports(e)
	e.closeRefused(cp)
	return nil
}

// Policy returns the current policy.
func (e *Egress) Policy() EgressPolicy { return e.policy.Load().EgressPolicy }

// strictEgress is the production default, for clients built without
// WithEgress.
var strictEgress, _ = NewEgress(EgressPolicy{})

// checkURL refuses a request URL before it is sent: plain http except to a
// loopback host with loopback allowed, and hosts the policy refuses by name
// or by literal address.
func (e *Egress) checkURL(u *url.URL) error {
	cp := e.policy.Load()
	host := u.Hostname()
	if r := numericHostReason(host); r != "" {
		return &EgressError{Reason: r}
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(host) || !cp.AllowLoopback {
			return &EgressError{Host: host, Reason: "plain http is allowed only to loopback hosts, with allow_loopback on"}
		}
	default:
		return &EgressError{Host: host, Reason: "scheme " + u.Scheme + " is not https"}
	}
	// A name, "localhost" included, is checked where it is dialled, on
	// the addresses it resolves to.
	if a, err := netip.ParseAddr(host); err == nil {
		if r := cp.addrReason(a, false); r != "" {
			return &EgressError{Host: host, Reason: r}
		}
	}
	return nil
}

// proxyFor is the transport's Proxy function. A request that goes through
// a proxy is checked here by name, since the proxy, not this process,
// resolves the bank's host.
func (e *Egress) proxyFor(req *http.Request) (*url.URL, error) {
	if e.proxy == nil {
		return nil, nil
	}
	pu, err := e.proxy(req.URL)
	if err != nil || pu == nil {
		return pu, err
	}
	cp := e.policy.Load()
	host := req.URL.Hostname()
	if r := numericHostReason(host); r != "" {
		return nil, &EgressError{Reason: r}
	}
	if cp.restricted() && !cp.nameAllowed(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			return nil, &EgressError{Host: host, Reason: "not in allowed_hosts"}
		}
	}
	return pu, nil
}

// dialContext is the transport's dialer: the host name is checked against
// allowed_hosts, and every address it resolves to is checked just before
// the connection is made (net.Dialer.Control), so DNS cannot get around the
// policy. The configured proxy's own address is not checked.
func (e *Egress) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	cp := e.policy.Load()
	proxied := e.proxyAddrs[addr]
	host := ""
	if !proxied {
		var err error
		if host, _, err = net.SplitHostPort(addr); err != nil {
			return nil, err
		}
		if r := numericHostReason(host); r != "" {
			return nil, &EgressError{Reason: r}
		}
		byName := cp.nameAllowed(host)
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ip, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return &EgressError{Host: host, Addr: ip, Reason: "not an IP address"}
			}
			if r := cp.addrReason(a, byName); r != "" {
				return &EgressError{Host: host, Addr: a.Unmap().String(), Reason: r}
			}
			return nil
		}
	}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return e.track(conn, host, proxied, cp), nil
}

// asEgressError finds an *EgressError in a transport failure.
func asEgressError(err error) (*EgressError, bool) {
	var ee *EgressError
	if errors.As(err, &ee) {
		return ee, true
	}
	return nil, false
}

// String describes the policy for logs.
func (p EgressPolicy) String() string {
	return fmt.Sprintf("allow_loopback=%t allowed_hosts=%v", p.AllowLoopback, p.AllowedHosts)
}
