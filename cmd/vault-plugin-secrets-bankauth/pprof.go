//go:build pprof

package main

// Profiling build, for benchmarks only: go build -tags pprof. Release builds
// (make build) leave this file out. With BANKAUTH_PPROF=127.0.0.1:6060 in the
// plugin's environment (vault plugin register -env=BANKAUTH_PPROF=...), the
// plugin serves net/http/pprof there, e.g.
//
//	go tool pprof http://127.0.0.1:6060/debug/pprof/heap

import (
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"

	hclog "github.com/hashicorp/go-hclog"
)

func init() {
	addr := os.Getenv("BANKAUTH_PPROF")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		hclog.New(&hclog.LoggerOptions{}).Error("BANKAUTH_PPROF must be a loopback host:port", "value", addr)
		return
	}
	go http.ListenAndServe(addr, nil)
}
