package vaulttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildExtraPlugin builds the main package at ./cmd/<binary> of this
// repository (e.g. the benchmarks' null plugin) into the plugin directory
// that servers started by Start use, and returns the binary's SHA-256. It is
// built like the bankauth plugin: with -race only under BANKAUTH_RACE=1.
func BuildExtraPlugin(binary string) (sha string, err error) {
	dir, _, err := BuildPlugin()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, binary)
	args := []string{"build", "-o", bin}
	if raceBuild() {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/"+binary)...)
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", binary, err, out)
	}
	return fileSHA256(bin)
}

// PID is the process id of the running vault server (0 when stopped), so
// that benchmarks can find its plugin processes.
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func raceBuild() bool { return os.Getenv("BANKAUTH_RACE") == "1" }

// PluginDir is the plugin_directory the server runs plugins from (a
// cluster node's own copy), for tests that install more plugin binaries.
func (s *Server) PluginDir() string { return s.pluginDir }
