//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// One fuzz request: how it is drawn, sent as raw HTTP, and shown in reports.

// fuzzReq is one request as sent.
type fuzzReq struct {
	N       int
	Op      fuzzOp
	Label   string // the operation, "OFF ..." for a method the path does not declare
	Method  string
	Path    string // relative to the mount, escaped as sent
	Query   url.Values
	Body    []byte
	Shown   any  // the body for reports (huge strings abbreviated)
	NoToken bool // sent without a Vault token
	Name    string
	Seeded  bool // a write to a seeded object
	Data    map[string]any
	sum     string // the summary, for requests kept after they were sent
}

// build draws the next request.
func (f *fuzzer) build() *fuzzReq {
	g := f.g
	g.req = f.sent + 1
	op := f.ops[g.pick(len(f.ops))]
	off := ""
	if g.chance(0.05) { // another method on the same path, maybe one it does not declare
		m := oneOf(g, "GET", "POST", "PUT", "DELETE", "PATCH", "LIST")
		declared := -1
		for i, o := range f.ops {
			if o.Path == op.Path && o.List == (m == "LIST") && (o.Method == m || m == "LIST" || (m == "PUT" && o.Method == "POST")) {
				declared = i
			}
		}
		if declared >= 0 {
			op = f.ops[declared]
		} else {
			off = m
		}
	}
	r := &fuzzReq{N: g.req, Op: op, Label: op.Label(), Method: op.Method, Query: url.Values{}}
	switch {
	case off == "LIST":
		r.Method, r.Label = "GET", "OFF LIST "+op.Path
		r.Query.Set("list", "true")
	case off != "":
		r.Method, r.Label = off, "OFF "+off+" "+op.Path
	case op.List:
		r.Query.Set("list", "true")
	}
	g.op = r.Label
	r.NoToken = g.chance(0.03)
	write := r.Method != "GET"
	r.Path = op.Path
	for _, p := range op.Params {
		fam := op.family()
		if p == "id" { // a consent's own name, under its config
			fam = "consent"
		}
		name := g.name(fam, r.Method != "DELETE")
		r.Path = strings.ReplaceAll(r.Path, "{"+p+"}", name)
		if p != "id" {
			r.Name = name
			r.Seeded = write && f.isSeeded(fam, name)
		}
	}
	if op.Path == "settings" && write {
		r.Seeded = true
	}
	if r.Method == "GET" {
		for _, q := range op.Query {
			if g.chance(0.4) {
				r.Query.Set(q.Name, queryString(g.value(q)))
			}
		}
		if g.chance(0.05) {
			r.Query.Set(oneOf(g, "after", "limit", "lease", "x"), queryString(g.hostile("")))
		}
		if g.chance(0.02) { // the plugin answers help itself, odd path names too
			r.Query.Set("help", "1")
		}
		// Vault hands a GET's query parameters to the plugin as data: send
		// some of the fields a write to the same path takes, secrets too.
		if body := f.writeFields(op.Path); len(body) > 0 && g.chance(0.15) {
			fd := body[g.pick(len(body))]
			r.Query.Set(fd.Name, queryString(g.value(fd)))
		}
		return r
	}
	f.drawBody(r)
	return r
}

// writeFields are the body fields of the POST operation on path, if any.
func (f *fuzzer) writeFields(path string) []fuzzField {
	for _, o := range f.ops {
		if o.Path == path && o.Method == "POST" {
			return o.Body
		}
	}
	return nil
}

// drawBody gives r a JSON body, mostly an object of the operation's fields.
func (f *fuzzer) drawBody(r *fuzzReq) {
	g := f.g
	switch x := g.r.Float64(); {
	case x < 0.03:
		return
	case x < 0.06: // broken JSON, with a secret in it when the operation has one
		c := "x"
		for _, fd := range r.Op.Body {
			if fd.Sensitive != "" {
				c = fmt.Sprintf(`"%s":"%s`, fd.Name, g.canary(fd))
				break
			}
		}
		r.Body = []byte(oneOf(g, `{`+c, `{"a":1,`+c+`}`, `[`+c, c+`"}`, "\xff\xfe"+c))
		r.Shown = "raw:" + string(r.Body)
		return
	case x < 0.09:
		v := oneOf[any](g, []any{}, "str", 1, nil, []any{map[string]any{"a": 1}}, true)
		r.Body, _ = json.Marshal(v)
		r.Shown = v
		return
	}
	// Mostly hostile fields; sometimes valid ones but for one hostile field,
	// to get past the first checks.
	validMode := g.chance(0.3)
	target := -1
	if len(r.Op.Body) > 0 {
		target = g.pick(len(r.Op.Body))
	}
	data := map[string]any{}
	for i, fd := range r.Op.Body {
		switch {
		case i == target:
			data[fd.Name] = g.value(fd)
		case !g.chance(0.4):
		case validMode:
			if v := g.valid(fd); v != nil {
				data[fd.Name] = v
			}
		default:
			data[fd.Name] = g.value(fd)
		}
	}
	if g.chance(0.3) && r.Op.Path == "profile/{name}" {
		data["profile"] = f.mutateProfile()
	}
	if g.chance(0.08) {
		data[fmt.Sprintf("zz_unknown_%d", g.pick(3))] = g.hostile(g.canary(fuzzField{Name: "zz_unknown"}))
	}
	if g.chance(0.02) {
		data[""] = g.hostile("")
	}
	r.setData(data)
}

// setData makes data r's body.
func (r *fuzzReq) setData(data map[string]any) {
	r.Data = data
	r.Body, _ = json.Marshal(data)
	r.Shown = abbreviate(data)
}

// mutateProfile is the seeded profile document with one value replaced by
// a hostile one.
func (f *fuzzer) mutateProfile() any {
	var doc any
	json.Unmarshal([]byte(f.g.profile), &doc)
	var leaves []func(any)
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				leaves = append(leaves, func(x any) { t[k] = x })
				walk(t[k])
			}
		case []any:
			for i := range t {
				leaves = append(leaves, func(x any) { t[i] = x })
				walk(t[i])
			}
		}
	}
	walk(doc)
	c := ""
	if f.g.chance(0.5) {
		c = f.g.canary(fuzzField{Name: "profile"})
	}
	leaves[f.g.pick(len(leaves))](f.g.hostile(c))
	if f.g.chance(0.5) {
		b, _ := json.Marshal(doc)
		return string(b)
	}
	return doc
}

func queryString(v any) string {
	s, ok := v.(string)
	if !ok {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	return clip(s, 2000)
}

// abbreviate copies v with long strings cut short, for reports.
func abbreviate(v any) any {
	switch t := v.(type) {
	case string:
		return clip(t, 80)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = abbreviate(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = abbreviate(x)
		}
		return out
	}
	return v
}

// summary shows r as one line of at most about n bytes.
func (r *fuzzReq) summary(n int) string {
	if r.sum != "" {
		return clip(r.sum, n)
	}
	s := fmt.Sprintf("#%d %s /v1/<mount>/%s", r.N, r.Method, clip(r.Path, 120))
	if len(r.Query) > 0 {
		s += "?" + clip(r.Query.Encode(), 200)
	}
	if r.NoToken {
		s += " (no token)"
	}
	if r.Shown != nil {
		b, _ := json.Marshal(r.Shown)
		s += " " + string(b)
	}
	return clip(s, n)
}

// send sends r as raw HTTP: the path exactly as drawn, the root token.
func (f *fuzzer) send(r *fuzzReq) (int, []byte, error) { return f.sendAt(f.mount, r) }

// sendAt sends r to the same path under another mount path.
func (f *fuzzer) sendAt(mount string, r *fuzzReq) (int, []byte, error) {
	u, _ := url.Parse(f.addr)
	u.Opaque = "/v1/" + mount + "/" + r.Path
	u.RawQuery = r.Query.Encode()
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequest(r.Method, f.addr, body)
	if err != nil {
		return 0, nil, err
	}
	req.URL = u
	if !r.NoToken {
		req.Header.Set("X-Vault-Token", f.token)
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16*mib))
	return resp.StatusCode, b, err
}

// do sends a request of the fuzzer's own (seeding, snapshots, guards).
func (f *fuzzer) do(method, path string, data any) (int, []byte, error) {
	r := &fuzzReq{Method: method, Path: path, Query: url.Values{}}
	if method == "LIST" {
		r.Method = "GET"
		r.Query.Set("list", "true")
	}
	if data != nil {
		r.Body, _ = json.Marshal(data)
	}
	f.extra++
	return f.send(r)
}
