package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pluginPID finds the process running binary whose parent is ppid (the
// vault server): the plugin process Vault started.
func pluginPID(ppid int, binary string) (int, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if filepath.Base(string(argv0)) != binary {
			continue
		}
		if v, err := procStatus(pid, "PPid"); err == nil && v == strconv.Itoa(ppid) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no %s process under vault (pid %d)", binary, ppid)
}

// procStatus returns one field of /proc/<pid>/status.
func procStatus(pid int, field string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == field {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("pid %d: no %s in status", pid, field)
}

// rssMiB is a process's resident set size (VmRSS) in MiB.
func rssMiB(pid int) (float64, error) {
	v, err := procStatus(pid, "VmRSS")
	if err != nil {
		return 0, err
	}
	kb, err := strconv.Atoi(strings.TrimSuffix(v, " kB"))
	if err != nil {
		return 0, fmt.Errorf("VmRSS %q: %w", v, err)
	}
	return float64(kb) / 1024, nil
}
