//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// defaultFuzzSeed and defaultFuzzTime apply unless BANKAUTH_FUZZ_SEED and
// BANKAUTH_FUZZ_TIME say otherwise (make fuzz-e2e runs longer). The time
// includes starting Vault and seeding; minimizing and the log scans come
// after it (a few seconds), so make test spends under a minute here.
const (
	defaultFuzzSeed = 17
	defaultFuzzTime = 45 * time.Second
)

// fuzzer attacks one mount with requests drawn from its OpenAPI document.
type fuzzer struct {
	addr, token, mount string
	client             *http.Client
	ops                []fuzzOp
	g                  *valueGen
	secrets            []string // seeded secret values, never to be seen again

	sent, extra, skipped int
	compared             int // rejected writes to seeded objects checked against snapshots
	status               map[int]int
	perOp                map[string]map[int]int // label -> status -> count
	fails                failures

	snaps    map[string]string // seeded object read -> its last snapshot
	stale    map[string]bool   // snapshots taken before a write went through
	sentWith map[int]*fuzzReq  // requests that carried a sensitive canary, their bodies abbreviated
	trace    io.Writer         // every request and answer, abbreviated (BANKAUTH_FUZZ_TRACE)
}

// TestFuzz is the hostile-input fuzzer (issue 17): every path and operation
// of the mount's OpenAPI document, attacked with wrong and right values
// from a fixed seed for a bounded time. It fails on a 5xx other than a
// bank's, a 4xx without an error message, a sensitive value in any answer,
// Vault's log or the audit log, a sent value quoted in an error or warning,
// a rejected write that changed a seeded object, and a plugin restart.
func TestFuzz(t *testing.T) {
	seed, dur := uint64(defaultFuzzSeed), defaultFuzzTime
	if s := os.Getenv("BANKAUTH_FUZZ_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BANKAUTH_FUZZ_SEED: %v", err)
		}
		seed = v
	}
	if s := os.Getenv("BANKAUTH_FUZZ_TIME"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("BANKAUTH_FUZZ_TIME: %v", err)
		}
		dur = d
	}
	// The time counts from here: Vault's start and the seeding are in it.
	deadline := time.Now().Add(dur)
	srv := ownVault(t, vaulttest.Options{})
	auditLog := filepath.Join(srv.Dir(), "audit.log")
	if _, err := srv.MustCLI("audit", "enable", "file", "file_path="+auditLog, "log_raw=false"); err != nil {
		t.Fatal(err)
	}
	b := newBank(t, srv)
	f := &fuzzer{
		addr: srv.Addr, token: srv.RootToken, mount: b.mount,
		client: &http.Client{
			Timeout:       30 * time.Second,
			Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		g:      &valueGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), canaries: map[string]canaryInfo{}},
		status: map[int]int{}, perOp: map[string]map[int]int{}, sentWith: map[int]*fuzzReq{},
	}
	ops, err := loadSpec(srv.Addr, srv.RootToken, b.mount)
	if err != nil {
		t.Fatal(err)
	}
	f.ops = ops
	if p := os.Getenv("BANKAUTH_FUZZ_TRACE"); p != "" {
		tf, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer tf.Close()
		f.trace = tf
	}
	f.seed(t, b.url)
	logStart := int64(len(srv.Log()))
	pids := pluginPIDs(srv.PID())
	if len(pids) == 0 {
		t.Fatal("no bankauth plugin process under Vault")
	}

	start := time.Now()
	for checked := 0; time.Now().Before(deadline); {
		f.exec(f.build())
		if f.sent-checked >= 250 {
			f.checkAll(fmt.Sprintf("requests #%d-#%d", checked+1, f.sent))
			checked = f.sent
		}
	}
	f.checkAll("the last requests")
	elapsed := time.Since(start)
	f.minimize(3 * time.Second)

	if now := pluginPIDs(srv.PID()); !slices.Equal(now, pids) {
		f.fails.add("(plugin)", finding{Kind: "plugin process restarted", Detail: fmt.Sprintf("PIDs %v at the start, %v at the end", pids, now)}, nil)
	}
	scans := []struct {
		scan     logScan
		path     string
		from, to int64
	}{
		{logScan{f: f, what: "Vault's log", crashes: true}, srv.LogPath, logStart, -1},
		{logScan{f: f, what: "Vault's log (seeding)"}, srv.LogPath, 0, logStart},
		{logScan{f: f, what: "the audit log"}, auditLog, 0, -1},
	}
	for _, sc := range scans {
		if err := sc.scan.file(sc.path, sc.from, sc.to); err != nil {
			t.Errorf("%s: %v", sc.scan.what, err)
		}
		for _, fd := range sc.scan.out {
			f.fails.add(fd.Op, fd, f.sentWith[fd.Req])
		}
	}
	if st, err := os.Stat(auditLog); err != nil || st.Size() == 0 {
		t.Errorf("audit log %s: %v (empty?)", auditLog, err)
	}
	t.Logf("after the fuzzing: minimizing and log scans took %s", time.Since(start.Add(elapsed)).Round(100*time.Millisecond))
	f.report(t, seed, elapsed)
}

// exec sends r, judges the answer and checks what the write left behind.
func (f *fuzzer) exec(r *fuzzReq) {
	if r.Op.bankPath() && r.Name != "" && !f.fetchSafe(r.Name) {
		f.skipped++
		return
	}
	write := r.Method != "GET"
	if strings.Contains(string(r.Body)+r.Query.Encode(), "zsecCANARY") {
		f.sentWith[r.N] = &fuzzReq{N: r.N, Op: r.Op, Label: r.Label, sum: r.summary(600)}
	}
	if r.Seeded {
		f.refresh(f.related(r))
	}
	code, body, err := f.send(r)
	f.sent++
	f.status[code]++
	if f.perOp[r.Label] == nil {
		f.perOp[r.Label] = map[int]int{}
	}
	f.perOp[r.Label][code]++
	for _, fd := range f.attribute(r, f.judge(r, code, body, err)) {
		f.fails.add(r.Label, fd, r)
	}
	if f.trace != nil {
		fmt.Fprintf(f.trace, "%s\n  -> %d %s %v\n", r.summary(400), code, clip(string(body), 300), err)
	}
	if code == 200 && strings.HasPrefix(r.Path, "token/") {
		var ans struct {
			Data struct {
				AccessToken string `json:"access_token"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &ans) == nil {
			seen.add(ans.Data.AccessToken)
		}
	}
	switch {
	case write && code >= 200 && code < 300:
		f.markStale()
		if r.Op.Path == "settings" {
			f.restoreSettings()
		}
	case write && code >= 400 && code < 500 && r.Seeded:
		f.compared++
		for _, c := range f.changed(f.related(r)) {
			f.fails.add(r.Label, finding{Kind: "a rejected write changed a stored object", Detail: c}, r)
		}
	}
}

// checkAll compares every seeded object with its snapshot when no write has
// gone through since it was taken, then takes new snapshots of the others.
func (f *fuzzer) checkAll(window string) {
	for _, c := range f.changed(f.snapshotPaths()) {
		f.fails.add("(rejected writes)", finding{Kind: "a stored object changed with no write accepted", Detail: c + " during " + window}, nil)
	}
	f.refresh(f.snapshotPaths())
}

// noMount is a path no mount serves.
const noMount = "fz-no-such-mount"

// attribute replays r at a path no mount serves when its answer was wrong:
// a finding that comes back the same never reached the plugin (a body that
// is not JSON, a request line Go's HTTP server refuses, a path with control
// characters, a redirect that cleans a path with ".." and quotes the query).
func (f *fuzzer) attribute(r *fuzzReq, fds []finding) []finding {
	var again []finding
	for i, fd := range fds {
		if strings.Contains(fd.Kind, "changed") {
			continue
		}
		if again == nil {
			code, body, err := f.sendAt(noMount, r)
			f.extra++
			again = append(f.judge(r, code, body, err), finding{})
		}
		if slices.ContainsFunc(again, func(a finding) bool { return sameAnswer(a.Kind, fd.Kind) && a.Field == fd.Field }) {
			fds[i].Outside = "Vault answers the same at /v1/" + noMount + "/...: the request never reached the plugin"
		}
	}
	return fds
}
