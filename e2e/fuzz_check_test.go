//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// What the fuzzer holds against an answer, and how it groups what it finds.

// finding is one thing wrong with one answer (or log).
type finding struct {
	Op      string // the operation, when it is not the request's own (log scans)
	Req     int    // the request's number, when it is not the request's own
	Outside string // why it is not the plugin's doing, when it is not
	Kind    string // e.g. "500", "4xx without an error message", "sensitive value in an error"
	Field   string // the field whose value leaked, when known
	Detail  string
}

// answer is a parsed Vault answer.
type answer struct {
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

// judge returns what is wrong with the answer to r, without recording it.
func (f *fuzzer) judge(r *fuzzReq, status int, body []byte, err error) []finding {
	if err != nil && status == 0 {
		return []finding{{Kind: "no answer", Detail: clip(err.Error(), 200)}}
	}
	// An answer whose body could not be read whole (the server answered
	// before reading a large request, then reset) is judged by its status.
	var out []finding
	var ans answer
	jsonErr := json.Unmarshal(body, &ans)
	switch {
	case status >= 500 && (status == 502 || status == 503) && r.Op.bankPath():
	case status >= 500 && (status == 502 || status == 503):
		out = append(out, finding{Kind: fmt.Sprintf("%d on a path that does not talk to the bank", status), Detail: firstError(ans, body)})
	case status >= 500:
		out = append(out, finding{Kind: fmt.Sprint(status), Detail: firstError(ans, body)})
	case status >= 400 && !hasMessage(ans.Errors):
		d := fmt.Sprintf("body %q", clip(string(body), 120))
		switch {
		case jsonErr != nil && len(strings.TrimSpace(string(body))) > 0:
			d = "not a JSON answer: " + d
		case status == 404 && r.Method == "GET" && r.Query.Get("list") == "true":
			d += " (Vault's answer to a list with no keys: a warning or other data would keep the 200)"
		case status == 404 && r.Method == "GET":
			d += " (Vault's answer to a read the plugin answered with nothing: an error response with code 404 would say what is missing)"
		}
		out = append(out, finding{Kind: fmt.Sprintf("%d without an error message", status), Detail: d})
	}
	// Sensitive canaries anywhere in the answer; other canaries in errors and warnings.
	for _, m := range canaryRE.FindAllStringSubmatchIndex(string(body), -1) {
		c := string(body[m[0]:m[1]])
		if !strings.EqualFold(c[:4], "zsec") {
			continue
		}
		out = append(out, finding{Kind: "sensitive value in the answer (" + where(ans, c) + ")", Field: f.canaryField(c), Detail: around(string(body), m[0], m[1])})
	}
	for _, msg := range append(append([]string{}, ans.Errors...), ans.Warnings...) {
		for _, m := range canaryRE.FindAllStringIndex(msg, -1) {
			c := msg[m[0]:m[1]]
			if strings.EqualFold(c[:4], "znon") {
				out = append(out, finding{Kind: "a sent value quoted in an " + where(ans, c), Field: f.canaryField(c), Detail: around(msg, m[0], m[1])})
			}
		}
	}
	for _, s := range f.secrets {
		if i := strings.Index(string(body), s); i >= 0 {
			out = append(out, finding{Kind: "a seeded secret in the answer (" + where(ans, s) + ")", Detail: around(string(body), i, i+len(s))})
		}
	}
	return out
}

func hasMessage(errs []string) bool {
	for _, e := range errs {
		if strings.TrimSpace(e) != "" {
			return true
		}
	}
	return false
}

// where says which part of an answer holds s.
func where(ans answer, s string) string {
	for _, e := range ans.Errors {
		if strings.Contains(strings.ToLower(e), strings.ToLower(s)) {
			return "error"
		}
	}
	for _, w := range ans.Warnings {
		if strings.Contains(strings.ToLower(w), strings.ToLower(s)) {
			return "warning"
		}
	}
	return "data"
}

func firstError(ans answer, body []byte) string {
	if len(ans.Errors) > 0 {
		return strconv.Quote(clip(ans.Errors[0], 200))
	}
	return strconv.Quote(clip(string(body), 200))
}

// canaryField names the field a canary was sent in, e.g. "client_secret
// (sensitive: doc)".
func (f *fuzzer) canaryField(c string) string {
	m := canaryRE.FindStringSubmatch(c)
	info, ok := f.g.canaries[m[2]]
	if !ok {
		return "?"
	}
	if info.Why != "" {
		return info.Field + " (sensitive: " + info.Why + ")"
	}
	return info.Field
}

// clip shortens s to about n bytes, marking the cut, and never splits a rune.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
}

// around is s[i:j] with some context, clipped.
func around(s string, i, j int) string {
	lo, hi := max(0, i-60), min(len(s), j+60)
	return strconv.Quote(clip(s[lo:hi], 200))
}

// failures groups findings by operation and kind, keeping the first request
// of each group as its example.
type failures struct {
	byKey map[string]*failureGroup
	order []string
}

type failureGroup struct {
	Op, Kind, Field, Detail string
	Count                   int
	Req                     *fuzzReq
	Min                     string // a smaller request that shows it too, when found
	Outside                 string // why it is not the plugin's doing, when it is not
}

func (fs *failures) add(op string, fd finding, r *fuzzReq) {
	key := op + "\x00" + fd.Kind + "\x00" + fd.Field + "\x00" + fd.Outside
	if fs.byKey == nil {
		fs.byKey = map[string]*failureGroup{}
	}
	g, ok := fs.byKey[key]
	if !ok {
		g = &failureGroup{Op: op, Kind: fd.Kind, Field: fd.Field, Detail: fd.Detail, Req: r, Outside: fd.Outside}
		fs.byKey[key] = g
		fs.order = append(fs.order, key)
	}
	g.Count++
}

// groups are the failure groups, the worst first, else in the order found.
func (fs *failures) groups() []*failureGroup {
	out := make([]*failureGroup, 0, len(fs.order))
	for _, k := range fs.order {
		out = append(out, fs.byKey[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return severity(out[i].Kind) < severity(out[j].Kind) })
	return out
}

// severity ranks kinds of failure: leaks and crashes, 5xx, changed state,
// quoted values, missing messages.
func severity(kind string) int {
	switch {
	case strings.Contains(kind, "sensitive") || strings.Contains(kind, "secret") || strings.Contains(kind, "plugin"):
		return 0
	case kind == "no answer" || (len(kind) >= 3 && kind[0] == '5'):
		return 1
	case strings.Contains(kind, "changed"):
		return 2
	case strings.Contains(kind, "quoted"):
		return 3
	}
	return 4
}

// String is one report line per group.
func (g *failureGroup) String() string {
	s := fmt.Sprintf("%s: %s", g.Op, g.Kind)
	if g.Field != "" {
		s += " [field " + g.Field + "]"
	}
	s += fmt.Sprintf(" ×%d\n    detail: %s", g.Count, g.Detail)
	if g.Req != nil {
		s += "\n    request: " + g.Req.summary(600)
	}
	if g.Min != "" {
		s += "\n    minimal: " + g.Min
	}
	if g.Outside != "" {
		s += "\n    outside the plugin: " + g.Outside
	}
	return s
}

// canaryOp is the operation a canary was sent with.
func (f *fuzzer) canaryOp(c string) string {
	m := canaryRE.FindStringSubmatch(c)
	if info, ok := f.g.canaries[m[2]]; ok {
		return info.Op
	}
	return "?"
}

// canaryReq is the number of the request a canary was sent in.
func (f *fuzzer) canaryReq(c string) int {
	return f.g.canaries[canaryRE.FindStringSubmatch(c)[2]].Req
}

// canaryLocation tells where the canary numbered n was sent, for reports.
func (f *fuzzer) canaryLocation(c string) string {
	m := canaryRE.FindStringSubmatch(c)
	if info, ok := f.g.canaries[m[2]]; ok {
		return fmt.Sprintf("request #%d %s field %s", info.Req, info.Op, info.Field)
	}
	return "unknown request"
}

// outside counts the groups that are not the plugin's doing.
func (fs *failures) outside() int {
	n := 0
	for _, g := range fs.byKey {
		if g.Outside != "" {
			n++
		}
	}
	return n
}
