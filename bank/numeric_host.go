package bank

import (
	"net/netip"
	"strconv"
	"strings"
)

// A host whose last label is a number is an IPv4 address, as a WHATWG URL
// parser, inet_aton and so many proxies' resolvers read it: "2130706433",
// "0177.0.0.1", "127.1", "0x7f.1" and "169.254.43518" all mean loopback or
// link-local addresses. Go's resolver takes them for names, so a check of
// literal addresses would let them through to a proxy that maps them to
// 127.0.0.1 or 169.254.169.254. bankauth accepts only the dotted-decimal
// form of an IPv4 address and refuses every other numeric host, whatever
// it means: resolvers disagree on some forms (a leading 0 is octal to
// inet_aton, decimal to others), so no reading of ours could be trusted
// to be the proxy's.

// numericHostReason says why host is refused as a non-standard IPv4
// address, or "" when it is a name, an IPv6 address or a dotted-decimal
// IPv4 address. The reason never quotes the host.
func numericHostReason(host string) string {
	if strings.Contains(host, ":") || !endsInNumber(host) {
		return ""
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return ""
	}
	const rule = "a host that ends in a number is an IPv4 address and must be written as four dotted decimal numbers without leading zeros, like 203.0.113.7"
	a, ok := parseInetAton(host)
	if !ok {
		return "the host ends in a number but is no valid IPv4 address (" + rule + ")"
	}
	what := "an IPv4 address in a non-standard form"
	if class := addrClass(a); class != "" {
		what = "a " + class + " address in a non-standard IPv4 form"
	}
	return "the host is " + what + " (" + rule + ")"
}

// addrClass names the kind of address a is when the egress policy or the
// URL checks treat it specially; "" otherwise.
func addrClass(a netip.Addr) string {
	switch {
	case a.IsUnspecified() || a.As4()[0] == 0:
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "multicast or broadcast"
	}
	return ""
}

// endsInNumber is WHATWG URL's "ends in a number" check: after dropping
// one trailing dot, the last label is all decimal digits or 0x and hex
// digits.
func endsInNumber(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if strings.Trim(last, "0123456789") == "" {
		return true
	}
	if len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		return strings.Trim(last[2:], "0123456789abcdefABCDEF") == ""
	}
	return false
}

// parseInetAton reads host the way inet_aton does: one to four parts,
// each decimal, octal (leading 0) or hex (0x), the last filling the
// remaining bytes; one trailing dot is allowed, as in WHATWG URL.
func parseInetAton(host string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := parseInetAtonPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (24 - 8*i)
			continue
		}
		if n >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func parseInetAtonPart(p string) (uint64, bool) {
	base := 10
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, p = 16, p[2:]
		if p == "" { // "0x" alone is 0 to WHATWG URL
			return 0, true
		}
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	if p == "" || p[0] == '+' || p[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(p, base, 32)
	return n, err == nil
}
