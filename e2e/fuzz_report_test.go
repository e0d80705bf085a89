//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzzer's findings made useful: smaller reproducers and the report.

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
	tried := 0
	for _, g := range f.fails.groups() {
		if g.Outside != "" {
			continue
		}
		if tried++; tried > 30 || time.Now().After(deadline) {
			break
		}
		if g.Req == nil || g.Req.Data == nil || len(g.Req.Data) < 2 || strings.Contains(g.Kind, " log") {
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
		"status %s; operations covered %d/%d (+%d requests with undeclared methods); %d canaries; %d distinct failures of the plugin (+%d groups of answers Vault gives before it)",
		seed, elapsed.Round(100*time.Millisecond), f.sent, f.extra, f.skipped, f.compared, strings.Join(st, " "), covered, declared, off,
		f.g.n, len(f.fails.order)-f.fails.outside(), f.fails.outside())
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
