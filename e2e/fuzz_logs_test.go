//go:build e2e

package e2e

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// What the fuzzer finds outside the answers: Vault's log, the audit log and
// the plugin's processes.

// pluginPIDs lists the bankauth plugin processes Vault (pid) runs.
func pluginPIDs(vaultPID int) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		rest := s[strings.LastIndexByte(s, ')')+1:] // after the command name
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(vaultPID) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		if strings.Contains(string(cmd), "vault-plugin-secrets-bankauth") {
			pid, _ := strconv.Atoi(filepath.Base(d))
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// logScan looks through a log (Vault's, or the audit log), line by line,
// for sensitive canaries and seeded secrets, and with crashes for plugin
// exits and panics. Each field, secret and crash is reported once.
type logScan struct {
	f       *fuzzer
	what    string
	crashes bool
	seen    map[string]bool
	out     []finding
}

// file scans path from offset from up to offset to (to < 0: to its end).
func (s *logScan) file(path string, from, to int64) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	if _, err := fh.Seek(from, io.SeekStart); err != nil {
		return err
	}
	var r io.Reader = fh
	if to >= 0 {
		r = io.LimitReader(fh, to-from)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadString('\n')
		s.line(line)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s *logScan) once(key string) bool {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if s.seen[key] {
		return false
	}
	s.seen[key] = true
	return true
}

func (s *logScan) line(text string) {
	f := s.f
	var matches [][]int
	// The regular expression only where a canary may be: it is slow under
	// the race detector, and the audit log is large.
	if strings.Contains(text, "CANARY") || strings.Contains(text, "canary") || strings.Contains(text, "Canary") {
		matches = canaryRE.FindAllStringIndex(text, -1)
	}
	for _, m := range matches {
		c := text[m[0]:m[1]]
		if !strings.EqualFold(c[:4], "zsec") {
			continue
		}
		field, outside := f.canaryField(c), ""
		if inRequestURI(text, m[0]) {
			outside = requestURIOutside
		}
		if !s.once(field + outside) {
			continue
		}
		s.out = append(s.out, finding{Op: f.canaryOp(c), Req: f.canaryReq(c), Kind: "sensitive value in " + s.what, Field: field,
			Detail: around(text, m[0], m[1]) + ", sent in " + f.canaryLocation(c), Outside: outside})
	}
	for _, sec := range f.secrets {
		for off := 0; ; {
			i := strings.Index(text[off:], sec)
			if i < 0 {
				break
			}
			i += off
			off = i + len(sec)
			outside := ""
			if inRequestURI(text, i) {
				outside = requestURIOutside
			}
			if s.once("secret " + sec + outside) {
				s.out = append(s.out, finding{Op: "(seeded secrets)", Kind: "a seeded secret in " + s.what,
					Detail: around(text, i, i+len(sec)), Outside: outside})
			}
		}
	}
	if l := strings.ToLower(text); s.crashes && (strings.Contains(l, "plugin process exited") || strings.Contains(l, "panic") ||
		strings.Contains(l, "plugin exited")) && s.once("crash") {
		s.out = append(s.out, finding{Kind: "plugin crash or exit in " + s.what, Detail: strconv.Quote(clip(text, 300))})
	}
}

const requestURIOutside = "Vault's audit entries keep request_uri, query string included, in clear: " +
	"a secret sent in a URL is the caller's leak, before any plugin sees the request"

// inRequestURI reports whether offset i of an audit log falls inside the
// value of a "request_uri" member (percent-encoded: no quote inside).
func inRequestURI(text string, i int) bool {
	const key = `"request_uri":"`
	j := strings.LastIndex(text[:i], key)
	return j >= 0 && !strings.Contains(text[j+len(key):i], `"`)
}
