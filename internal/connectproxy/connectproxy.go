// Package connectproxy is a small HTTP CONNECT proxy for tests: the kind of
// egress proxy banks' customers put between Vault and the internet. It
// records every CONNECT target and tunnels to the address Route gives.
// Tests only: the plugin never imports it.
package connectproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Proxy is a running CONNECT proxy.
type Proxy struct {
	// URL is the proxy's address, for HTTPS_PROXY.
	URL string
	srv *httptest.Server

	mu      sync.Mutex
	targets []string
	route   func(target string) string
}

// Start runs a proxy on loopback. route maps a CONNECT target (host:port)
// to the address actually dialled; nil dials the target itself.
func Start(route func(target string) string) *Proxy {
	p := &Proxy{route: route}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	return p
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// Targets lists the CONNECT targets seen so far, in order.
func (p *Proxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "only CONNECT", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.Host)
	p.mu.Unlock()
	dst := r.Host
	if p.route != nil {
		dst = p.route(r.Host)
	}
	up, err := net.Dial("tcp", dst)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, buf); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(conn, up); done <- struct{}{} }()
	<-done
	<-done
	conn.Close()
	up.Close()
}
