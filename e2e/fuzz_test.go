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
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// defaultFuzzSeed and defaultFuzzTime apply unless BANKAUTH_FUZZ_SEED and
// BANKAUTH_FUZZ_TIME say otherwise (make fuzz-e2e runs longer).
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
	logStart := len(srv.Log())
	pids := pluginPIDs(srv.PID())
	if len(pids) == 0 {
		t.Fatal("no bankauth plugin process under Vault")
	}

	start := time.Now()
	for deadline, checked := start.Add(dur), 0; time.Now().Before(deadline); {
		f.exec(f.build())
		if f.sent-checked >= 250 {
			f.checkAll(fmt.Sprintf("requests #%d-#%d", checked+1, f.sent))
			checked = f.sent
		}
	}
	f.checkAll("the last requests")
	elapsed := time.Since(start)
	f.minimize(5 * time.Second)

	if now := pluginPIDs(srv.PID()); !slices.Equal(now, pids) {
		f.fails.add("(plugin)", finding{Kind: "plugin process restarted", Detail: fmt.Sprintf("PIDs %v at the start, %v at the end", pids, now)}, nil)
	}
	vlog := srv.Log()
	for _, fd := range f.logFindings("Vault's log", vlog[logStart:], true) {
		f.fails.add(fd.Op, fd, f.sentWith[fd.Req])
	}
	for _, fd := range f.logFindings("Vault's log (seeding)", vlog[:logStart], false) {
		f.fails.add(fd.Op, fd, nil)
	}
	audit, err := os.ReadFile(auditLog)
	if err != nil || len(audit) == 0 {
		t.Errorf("audit log %s: %v, %d bytes", auditLog, err, len(audit))
	}
	for _, fd := range f.logFindings("the audit log", string(audit), false) {
		f.fails.add(fd.Op, fd, f.sentWith[fd.Req])
	}
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

// sameAnswer compares kinds of answer failure, taking a reset connection
// for Go's "400 Bad Request": which of the two a client sees of a refused
// request line depends on how much of a large body it wrote first.
func sameAnswer(a, b string) bool {
	norm := func(k string) string {
		if k == "no answer" {
			return "400 without an error message"
		}
		return k
	}
	return norm(a) == norm(b)
}

// minimize looks, within budget, for a smaller request that shows each of
// the worst 30 answer failures: the failing field alone, an empty body, else
// the fields dropped one at a time while the same finding stays.
func (f *fuzzer) minimize(budget time.Duration) {
	deadline := time.Now().Add(budget)
	for i, g := range f.fails.groups() {
		if i >= 30 || time.Now().After(deadline) {
			return
		}
		if g.Req == nil || g.Req.Data == nil || len(g.Req.Data) < 2 || g.Outside != "" || strings.Contains(g.Kind, " log") {
			continue
		}
		r := *g.Req
		shows := func(data map[string]any) bool {
			r.setData(data)
			code, body, err := f.send(&r)
			f.extra++
			return slices.ContainsFunc(f.judge(&r, code, body, err), func(fd finding) bool { return fd.Kind == g.Kind && fd.Field == g.Field })
		}
		field, _, _ := strings.Cut(g.Field, " (")
		data := g.Req.Data
		if v, ok := data[field]; ok && shows(map[string]any{field: v}) {
			g.Min = r.summary(600)
			continue
		}
		if shows(map[string]any{}) {
			g.Min = r.summary(600)
			continue
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if time.Now().After(deadline) {
				break
			}
			try := map[string]any{}
			for k2, v := range data {
				if k2 != k {
					try[k2] = v
				}
			}
			if shows(try) {
				data = try
			}
		}
		r.setData(data)
		g.Min = r.summary(600)
	}
	// A log leak shows with the request that shows the answer leak.
	for _, g := range f.fails.groups() {
		for _, a := range f.fails.groups() {
			if g.Min == "" && strings.Contains(g.Kind, " log") && a.Op == g.Op && a.Field == g.Field && a.Min != "" {
				g.Min = a.Min
			}
		}
	}
}

// report logs the run's figures, prints them on stdout for docs, and fails
// the test with the first 30 distinct failures.
func (f *fuzzer) report(t *testing.T, seed uint64, elapsed time.Duration) {
	codes := make([]int, 0, len(f.status))
	for c := range f.status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var st []string
	for _, c := range codes {
		st = append(st, fmt.Sprintf("%d=%d", c, f.status[c]))
	}
	declared, covered := 0, 0
	var lines []string
	for _, op := range f.ops {
		declared++
		n := 0
		for _, c := range f.perOp[op.Label()] {
			n += c
		}
		if n > 0 {
			covered++
		}
		sens := 0
		for _, fd := range op.Body {
			if fd.Sensitive != "" {
				sens++
			}
		}
		lines = append(lines, fmt.Sprintf("  %-30s %2d fields (%d sensitive) %6d sent %v", op.Label(), len(op.Body)+len(op.Query), sens, n, f.perOp[op.Label()]))
	}
	off := 0
	for label, m := range f.perOp {
		if strings.HasPrefix(label, "OFF ") {
			for _, c := range m {
				off += c
			}
		}
	}
	summary := fmt.Sprintf("bankauth fuzz: seed=%d duration=%s requests=%d (+%d checks, %d fetches skipped by the loopback guard, "+
		"%d rejected writes to seeded objects compared with snapshots) "+
		"status %s; operations covered %d/%d (+%d requests with undeclared methods); %d canaries; %d distinct failures (%d outside the plugin)",
		seed, elapsed.Round(100*time.Millisecond), f.sent, f.extra, f.skipped, f.compared, strings.Join(st, " "), covered, declared, off,
		f.g.n, len(f.fails.order), f.fails.outside())
	t.Logf("%s\nper operation:\n%s", summary, strings.Join(lines, "\n"))
	fmt.Println(summary)
	if covered < declared {
		t.Errorf("only %d of %d operations were sent", covered, declared)
	}
	var mine, outside []*failureGroup
	for _, g := range f.fails.groups() {
		if g.Outside != "" {
			outside = append(outside, g)
		} else {
			mine = append(mine, g)
		}
	}
	show := 30
	if s, err := strconv.Atoi(os.Getenv("BANKAUTH_FUZZ_SHOW")); err == nil {
		show = s
	}
	// Answers the plugin never saw: one line per kind, with one example.
	byKind := map[string][]*failureGroup{}
	var kinds []string
	for _, g := range outside {
		if byKind[g.Kind] == nil {
			kinds = append(kinds, g.Kind)
		}
		byKind[g.Kind] = append(byKind[g.Kind], g)
	}
	for _, k := range kinds {
		n, ops := 0, []string{}
		for _, g := range byKind[k] {
			n += g.Count
			ops = append(ops, g.Op)
		}
		t.Logf("not the plugin's: %s ×%d on %d operations (%s)\n    e.g. %s", k, n, len(ops), clip(strings.Join(ops, ", "), 300),
			strings.ReplaceAll(byKind[k][0].String(), "\n", "\n    "))
	}
	for i, g := range mine {
		if i == show {
			t.Errorf("... and %d more distinct failures", len(mine)-show)
			break
		}
		t.Errorf("fuzz failure %d/%d: %s", i+1, len(mine), g)
	}
}
