//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// runMarker, on the line before a fenced block in README.md or docs/, marks
// the block's commands as runnable against `make dev`.
const runMarker = "<!-- run: make dev -->"

// docCommand is one shell command of a marked block, with the output the
// document shows for it (prompt blocks only).
type docCommand struct {
	where  string // file:line
	cmd    string
	output []string
}

// markedCommands reads the commands of every marked block in file.
func markedCommands(t *testing.T, file string) []docCommand {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var out []docCommand
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != runMarker {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Errorf("%s:%d: %s is not followed by a fenced block", file, i+1, runMarker)
			continue
		}
		start := i + 2
		end := start
		for end < len(lines) && !strings.HasPrefix(lines[end], "```") {
			end++
		}
		out = append(out, blockCommands(file, start, lines[start:end])...)
		i = end
	}
	return out
}

// blockCommands splits a block into commands. In a prompt block, commands
// are the lines starting with "$ " and the lines after each are its shown
// output; otherwise every line that is not blank or a comment is a command.
// A line ending in a backslash continues on the next.
func blockCommands(file string, first int, lines []string) []docCommand {
	prompt := false
	for _, l := range lines {
		if strings.HasPrefix(l, "$ ") {
			prompt = true
		}
	}
	var out []docCommand
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if prompt && !strings.HasPrefix(l, "$ ") {
			if len(out) > 0 {
				out[len(out)-1].output = append(out[len(out)-1].output, l)
			}
			continue
		}
		l = strings.TrimPrefix(l, "$ ")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		c := docCommand{where: fmt.Sprintf("%s:%d", file, first+i+1), cmd: l}
		for strings.HasSuffix(c.cmd, `\`) && i+1 < len(lines) {
			i++
			c.cmd += "\n" + lines[i]
		}
		out = append(out, c)
	}
	return out
}

// docFiles lists README.md and every Markdown file under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.Walk("../docs", func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, strings.TrimPrefix(path, "../"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files[1:])
	return files
}

var (
	// keyLine is a row of vault's table output or of a listing: its first
	// field names a key or a config.
	keyLine = regexp.MustCompile(`^([a-z][a-z0-9_]*)(\s|$)`)
	// jsonKey is a line of JSON output naming a key.
	jsonKey = regexp.MustCompile(`^\s*("[a-z_]+":)`)
	// metricLine is a Prometheus sample: its name and labels.
	metricLine = regexp.MustCompile(`^(bankauth_[a-z_]+(\{[^}]*\})?)\s`)
)

// shownKeys is what of a command's shown output must be in its real output:
// the keys of tables and JSON, metric names with their labels, and JSON
// answers; values (tokens, times, counts) differ from run to run.
func shownKeys(output []string) []string {
	var keys []string
	for _, l := range output {
		switch {
		case metricLine.MatchString(l):
			keys = append(keys, metricLine.FindStringSubmatch(l)[1])
		case keyLine.MatchString(l):
			keys = append(keys, keyLine.FindStringSubmatch(l)[1])
		case jsonKey.MatchString(l):
			keys = append(keys, jsonKey.FindStringSubmatch(l)[1])
		case strings.HasPrefix(l, "{"):
			keys = append(keys, strings.TrimSpace(l))
		}
	}
	return keys
}

// TestDocsCommandsRun runs the commands of every block marked with
// runMarker, file by file in one shell each, against a running `make dev`
// (its ports replace the documented 8200 and 8300, its directory .dev/),
// in the environment its printed export line gives. A command must exit 0,
// or fail when the document shows it failing ("Error ..."), and its real
// output must hold the keys the document shows.
func TestDocsCommandsRun(t *testing.T) {
	t.Parallel()
	type fileCmds struct {
		file string
		cmds []docCommand
	}
	var all []fileCmds
	total := 0
	for _, f := range docFiles(t) {
		if cmds := markedCommands(t, f); len(cmds) > 0 {
			all = append(all, fileCmds{f, cmds})
			total += len(cmds)
		}
	}
	if len(all) == 0 || all[0].file != "README.md" {
		t.Fatalf("README.md has no block marked %s", runMarker)
	}
	t.Logf("%d marked commands in %d files", total, len(all))

	d := startDev(t)
	devDir := filepath.Join(d.dir, "dev")
	subst := strings.NewReplacer(
		"127.0.0.1:8200", fmt.Sprintf("127.0.0.1:%d", d.vaultPort),
		"127.0.0.1:8300", fmt.Sprintf("127.0.0.1:%d", d.emuPort),
		".dev/", devDir+"/")
	env := newUserEnv(t)
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = "PATH=" + filepath.Join(devDir, "bin") + ":" + strings.TrimPrefix(kv, "PATH=")
		}
	}
	env = append(env, fmt.Sprintf("VAULT_ADDR=http://127.0.0.1:%d", d.vaultPort), "VAULT_TOKEN=root")

	for _, fc := range all {
		var script strings.Builder
		for i, c := range fc.cmds {
			fmt.Fprintf(&script, "printf '\\n@@@ begin %d\\n'\n%s\nprintf '\\n@@@ exit %d %%s\\n' \"$?\"\n", i, subst.Replace(c.cmd), i)
		}
		cmd := exec.Command("bash", "-c", script.String())
		cmd.Dir = ".."
		cmd.Env = env
		raw, _ := cmd.CombinedOutput()
		got := string(raw)
		for i, c := range fc.cmds {
			begin := fmt.Sprintf("\n@@@ begin %d\n", i)
			endRe := regexp.MustCompile(fmt.Sprintf("\n@@@ exit %d ([0-9]+)\n", i))
			b := strings.Index(got, begin)
			m := endRe.FindStringSubmatchIndex(got)
			if b < 0 || m == nil {
				t.Errorf("%s: %s: did not run to its end; output:\n%s", c.where, c.cmd, got)
				break
			}
			out := got[b+len(begin) : m[0]]
			code, _ := strconv.Atoi(got[m[2]:m[3]])
			wantFail := false
			for _, l := range c.output {
				if strings.HasPrefix(l, "Error ") {
					wantFail = true
				}
			}
			if wantFail != (code != 0) {
				t.Errorf("%s: %s: exit %d (the document shows it %s)\n%s", c.where, c.cmd, code,
					map[bool]string{true: "failing", false: "succeeding"}[wantFail], out)
				continue
			}
			if len(c.output) > 0 && strings.TrimSpace(out) == "" {
				t.Errorf("%s: %s: no output, the document shows some", c.where, c.cmd)
			}
			for _, k := range shownKeys(c.output) {
				if !strings.Contains(out, k) {
					t.Errorf("%s: %s: the output lacks %s, which the document shows:\n%s", c.where, c.cmd, k, out)
				}
			}
		}
	}
}
