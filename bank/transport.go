package bank

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-cleanhttp"
)

// Clients share HTTP transports: one per distinct CA bundle and client
// certificate, counted by reference. A transport per client kept one idle
// keep-alive connection per config, with its buffers and two goroutines
// (about 30 KiB), for 90 s after every fetch: with 10,000 configs in use that
// alone was hundreds of MiB. Shared, idle connections are pooled per bank
// host instead. Credentials travel in each request, except a client
// certificate (mTLS), which belongs to the connection: configs with
// different client certificates never share a transport.
// Each mount's Egress has transports of its own: their dialer and proxy
// apply its policy.
var transports = struct {
	sync.Mutex
	m     map[transportID]*sharedTransport
	swept time.Time // last sweep of unreferenced transports
}{m: map[transportID]*sharedTransport{}}

// transportID is a shared transport's key: the egress whose policy it
// applies and what its connections carry (transportKey).
type transportID struct {
	egress *Egress
	tls    string
}

// sharedTransport is what clients hold as their http.Client's transport:
// it sends each request over the current *http.Transport, which an egress
// policy change replaces (renewTransports), so no request after the change
// goes over a connection pooled before it.
type sharedTransport struct {
	t         atomic.Pointer[http.Transport]
	tls       *tls.Config // as built, for the transports that replace t
	refs      int
	idleSince time.Time // when refs last dropped to 0
}

// RoundTrip sends req over the current transport.
func (st *sharedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return st.t.Load().RoundTrip(req)
}

// transportKey identifies what a connection carries: the trusted CAs and
// the client certificate and key (hashed, so the key text is not a map key).
func transportKey(cfg *Config) string {
	if k := cfg.keys.TLS; k != nil && cfg.Settings[FieldTLSKey] != "" {
		return keyTransportKey(cfg, k)
	}
	if cfg.TLSClientCert == "" {
		return cfg.CACert
	}
	sum := sha256.Sum256([]byte(cfg.TLSClientCert + "\x00" + cfg.TLSClientKey))
	return cfg.CACert + "\x00mtls:" + string(sum[:])
}

// acquireTransport returns the shared transport for cfg's CA bundle and
// client certificate and takes a reference to it.
func acquireTransport(cfg *Config, egress *Egress) (*sharedTransport, error) {
	key := transportID{egress, transportKey(cfg)}
	transports.Lock()
	defer transports.Unlock()
	st := transports.m[key]
	if st == nil {
		tc, err := tlsConfigFor(cfg)
		if err != nil {
			return nil, err
		}
		st = &sharedTransport{tls: tc}
		st.t.Store(newTransport(tc, egress))
		transports.m[key] = st
	}
	st.refs++
	return st, nil
}

// transportLinger is how long a transport nobody holds is kept for the
// next client (clients are built per fetch): its pooled connections and
// parsed CA bundle are reused instead of dialled and parsed again.
const transportLinger = 2 * time.Minute

// releaseTransport drops a reference taken by acquireTransport. A transport
// left unreferenced for transportLinger has its idle connections closed and
// is forgotten, at a later acquire or release.
func releaseTransport(cfg *Config, egress *Egress) {
	key := transportID{egress, transportKey(cfg)}
	transports.Lock()
	defer transports.Unlock()
	now := time.Now()
	if st := transports.m[key]; st != nil {
		if st.refs--; st.refs <= 0 {
			st.refs, st.idleSince = 0, now
		}
	}
	sweepTransports(now)
}

// sweepTransports forgets transports unreferenced for transportLinger, at
// most once per half linger. The caller holds the transports lock.
func sweepTransports(now time.Time) {
	if now.Sub(transports.swept) < transportLinger/2 {
		return
	}
	transports.swept = now
	for key, st := range transports.m {
		if st.refs == 0 && now.Sub(st.idleSince) >= transportLinger {
			st.t.Load().CloseIdleConnections()
			delete(transports.m, key)
		}
	}
}

// renewTransports gives egress's shared transports new, empty connection
// pools after a policy change: later requests dial again, under the new
// policy. The old transports' idle connections are closed now; the busy
// ones finish their requests (unless the policy refuses their host:
// Egress.Set closes those) and are closed once every request that may
// still be using them has timed out.
func renewTransports(egress *Egress) {
	transports.Lock()
	defer transports.Unlock()
	for id, st := range transports.m {
		if id.egress != egress {
			continue
		}
		old := st.t.Swap(newTransport(st.tls, egress))
		old.CloseIdleConnections()
		time.AfterFunc(MaxTimeout+time.Second, old.CloseIdleConnections)
	}
}

// tlsConfigFor is the TLS configuration of cfg's connections: TLS 1.2 or
// later, cfg's CA bundle on top of the system roots, its client
// certificate.
func tlsConfigFor(cfg *Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM([]byte(cfg.CACert))
		tc.RootCAs = pool
	}
	cert, err := cfg.clientCertificate()
	if err != nil {
		return nil, err
	}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return tc, nil
}

// newTransport makes a transport whose connections follow egress's policy
// and use a copy of tc (a transport adds its protocols to its copy).
func newTransport(tc *tls.Config, egress *Egress) *http.Transport {
	transport := cleanhttp.DefaultPooledTransport()
	transport.DialContext = egress.dialContext
	transport.Proxy = egress.proxyFor
	transport.TLSClientConfig = tc.Clone()
	transport.ResponseHeaderTimeout = MaxTimeout // each client's own timeout bounds its requests
	return transport
}
