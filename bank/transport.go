package bank

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sync"
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

type sharedTransport struct {
	t         *http.Transport
	refs      int
	idleSince time.Time // when refs last dropped to 0
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
func acquireTransport(cfg *Config, egress *Egress) (*http.Transport, error) {
	key := transportID{egress, transportKey(cfg)}
	transports.Lock()
	defer transports.Unlock()
	st := transports.m[key]
	if st == nil {
		t, err := newTransport(cfg, egress)
		if err != nil {
			return nil, err
		}
		st = &sharedTransport{t: t}
		transports.m[key] = st
	}
	st.refs++
	return st.t, nil
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
			st.t.CloseIdleConnections()
			delete(transports.m, key)
		}
	}
}

// closeIdleFor closes the idle connections of egress's transports, made
// under a policy that may have changed.
func closeIdleFor(egress *Egress) {
	transports.Lock()
	defer transports.Unlock()
	for id, st := range transports.m {
		if id.egress == egress {
			st.t.CloseIdleConnections()
		}
	}
}

func newTransport(cfg *Config, egress *Egress) (*http.Transport, error) {
	transport := cleanhttp.DefaultPooledTransport()
	transport.DialContext = egress.dialContext
	transport.Proxy = egress.proxyFor
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	transport.ResponseHeaderTimeout = MaxTimeout // each client's own timeout bounds its requests
	if cfg.CACert != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM([]byte(cfg.CACert))
		transport.TLSClientConfig.RootCAs = pool
	}
	cert, err := cfg.clientCertificate()
	if err != nil {
		return nil, err
	}
	if cert != nil {
		transport.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	return transport, nil
}
