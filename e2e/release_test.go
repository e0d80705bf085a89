//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// copySource copies the module's files (tracked, plus new files not yet
// ignored) into dst, as a second clone at another path would hold them.
func copySource(t *testing.T, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", "..", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join("..", f))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		} else if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(filepath.Join("..", f))
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), data, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// release runs scripts/release.sh (what `make release` runs) in srcDir for
// one platform, into dist, and returns what it printed.
func release(t *testing.T, srcDir, version, platform, dist string) string {
	t.Helper()
	cmd := exec.Command("bash", "scripts/release.sh", version)
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "DIST="+dist, "PLATFORMS="+platform)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("release.sh in %s: %v\n%s%s", srcDir, err, out.String(), errb.String())
	}
	return out.String()
}

// TestReleaseIsReproducible builds a release twice, from this checkout and
// from a copy of it at another path, and requires byte-identical binaries
// and SHA256SUMS, and register lines that name the right checksum.
func TestReleaseIsReproducible(t *testing.T) {
	t.Parallel()
	const version = "v9.8.7"
	platform := runtime.GOOS + "/" + runtime.GOARCH
	name := fmt.Sprintf("vault-plugin-secrets-bankauth_%s_%s_%s", version, runtime.GOOS, runtime.GOARCH)
	copyDir := filepath.Join(t.TempDir(), "elsewhere", "bankauth")
	copySource(t, copyDir)
	distA, distB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	printed := release(t, "..", version, platform, distA)
	release(t, copyDir, version, platform, distB)

	binA, err := os.ReadFile(filepath.Join(distA, name))
	if err != nil {
		t.Fatal(err)
	}
	binB, err := os.ReadFile(filepath.Join(distB, name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(binA, binB) {
		t.Fatalf("two builds of the same source differ (%d and %d bytes)", len(binA), len(binB))
	}
	sumsA, _ := os.ReadFile(filepath.Join(distA, "SHA256SUMS"))
	sumsB, _ := os.ReadFile(filepath.Join(distB, "SHA256SUMS"))
	sum := sha256.Sum256(binA)
	hexSum := hex.EncodeToString(sum[:])
	if want := hexSum + "  " + name + "\n"; string(sumsA) != want || !bytes.Equal(sumsA, sumsB) {
		t.Fatalf("SHA256SUMS:\n%s\nand\n%s\nwant\n%s", sumsA, sumsB, want)
	}
	wantLine := fmt.Sprintf("vault plugin register -sha256=%s -version=%s -command=%s secret bankauth", hexSum, version, name)
	if !strings.Contains(printed, wantLine) {
		t.Fatalf("release did not print %q:\n%s", wantLine, printed)
	}
	// Nothing of the machine that built it is in the binary.
	repo, _ := filepath.Abs("..")
	for _, dir := range []string{copyDir, repo, runtime.GOROOT()} {
		if bytes.Contains(binA, []byte(dir)) {
			t.Errorf("the binary holds the path %s", dir)
		}
	}
	info, err := exec.Command("go", "version", "-m", filepath.Join(distA, name)).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-trimpath=true", "CGO_ENABLED=0"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("go version -m does not show %s", want)
		}
	}
	// -trimpath keeps -ldflags out of the build info: look for the version
	// the release set in the binary itself.
	if !bytes.Contains(binA, []byte(version)) {
		t.Errorf("the binary does not hold its version %s", version)
	}
	if strings.Contains(string(info), "vcs.") {
		t.Errorf("the binary carries a VCS stamp, which differs between a clone and a tarball:\n%s", info)
	}
}
