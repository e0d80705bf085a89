package engine

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sync"

	"github.com/hashicorp/go-cleanhttp"
)

// Clients share HTTP transports: one per distinct CA bundle ("" for the
// system roots), counted by reference. A transport per client kept one idle
// keep-alive connection per config, with its buffers and two goroutines
// (about 30 KiB), for 90 s after every fetch: with 10,000 configs in use that
// alone was hundreds of MiB. Shared, idle connections are pooled per bank
// host instead. Credentials travel in each request, never in the connection.
var transports = struct {
	sync.Mutex
	m map[string]*sharedTransport
}{m: map[string]*sharedTransport{}}

type sharedTransport struct {
	t    *http.Transport
	refs int
}

// acquireTransport returns the shared transport for caCert (PEM, "" for
// the system roots) and takes a reference to it.
func acquireTransport(caCert string) *http.Transport {
	transports.Lock()
	defer transports.Unlock()
	st := transports.m[caCert]
	if st == nil {
		st = &sharedTransport{t: newTransport(caCert)}
		transports.m[caCert] = st
	}
	st.refs++
	return st.t
}

// releaseTransport drops a reference taken by acquireTransport; the last
// one closes the transport's idle connections and forgets it.
func releaseTransport(caCert string) {
	transports.Lock()
	defer transports.Unlock()
	st := transports.m[caCert]
	if st == nil {
		return
	}
	if st.refs--; st.refs <= 0 {
		st.t.CloseIdleConnections()
		delete(transports.m, caCert)
	}
}

func newTransport(caCert string) *http.Transport {
	transport := cleanhttp.DefaultPooledTransport()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	transport.ResponseHeaderTimeout = MaxTimeout // each client's own timeout bounds its requests
	if caCert != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM([]byte(caCert))
		transport.TLSClientConfig.RootCAs = pool
	}
	return transport
}
