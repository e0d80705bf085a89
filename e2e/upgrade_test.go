//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// upgradeFrom is the commit the "old release" of the upgrade test is built
// from: the last commit before the token lifecycle moved into broker/, so
// the test proves that configs and tokens stored by that code are served by
// this one. UPGRADE_FROM overrides it (any git ref).
const upgradeFrom = "6fe854f3cefc1eb8d036432a2571b322e9853f83"

// buildOldRelease builds the plugin as released at ref, with the release
// flags of scripts/release.sh, into path.
func buildOldRelease(t *testing.T, ref, version, path string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "old-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.Command("git", "-C", "..", "archive", "--format=tar", ref)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var archErr strings.Builder
	archive.Stderr = &archErr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s (a shallow clone lacks it; set UPGRADE_FROM): %v %s", ref, err, archErr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-buildid= -X github.com/bankauth/vault-plugin-secrets-bankauth.Version="+version,
		"-o", path, "./cmd/"+vaulttest.PluginBinary)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s at %s: %v\n%s", version, ref, err, out)
	}
}

// copyFile copies src to dst with mode 0755.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// runningVersion is the plugin version Vault reports running at mount.
func runningVersion(t *testing.T, srv *vaulttest.Server, mount string) string {
	t.Helper()
	mounts, err := srv.Client.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := mounts[mount+"/"]
	if !ok {
		t.Fatalf("no mount %s", mount)
	}
	return m.RunningVersion
}

// upgradeRelease is a release binary of the upgrade tests.
type upgradeRelease struct {
	version, name, path, sha string
}

// upgradeReleases builds the two releases the upgrade tests switch
// between: oldV from the commit upgradeFrom (or $UPGRADE_FROM), newV from
// this tree with scripts/release.sh, both for this machine's platform.
func upgradeReleases(t *testing.T, oldV, newV string) (old, cur upgradeRelease) {
	t.Helper()
	ref := os.Getenv("UPGRADE_FROM")
	if ref == "" {
		ref = upgradeFrom
	}
	return upgradeReleasesFrom(t, ref, oldV, newV)
}

// upgradeReleasesFrom is upgradeReleases with the old release built from
// ref.
func upgradeReleasesFrom(t *testing.T, ref, oldV, newV string) (old, cur upgradeRelease) {
	t.Helper()
	dist := t.TempDir()
	suffix := "_" + runtime.GOOS + "_" + runtime.GOARCH
	old = upgradeRelease{version: oldV, name: vaulttest.PluginBinary + "_" + oldV + suffix}
	old.path = filepath.Join(t.TempDir(), old.name)
	buildOldRelease(t, ref, oldV, old.path)
	release(t, "..", newV, runtime.GOOS+"/"+runtime.GOARCH, dist)
	cur = upgradeRelease{version: newV, name: vaulttest.PluginBinary + "_" + newV + suffix}
	cur.path = filepath.Join(dist, cur.name)
	for _, r := range []*upgradeRelease{&old, &cur} {
		sum, err := exec.Command("sha256sum", r.path).Output()
		if err != nil {
			t.Fatal(err)
		}
		r.sha = strings.Fields(string(sum))[0]
	}
	return old, cur
}

// installReleases copies the releases into pluginDir under their names and
// registers each with its -version as plugin, through srv.
func installReleases(t *testing.T, srv *vaulttest.Server, plugin string, pluginDirs []string, rels ...upgradeRelease) {
	t.Helper()
	for _, r := range rels {
		for _, dir := range pluginDirs {
			copyFile(t, r.path, filepath.Join(dir, r.name))
		}
		if _, err := srv.MustCLI("plugin", "register", "-sha256="+r.sha,
			"-version="+r.version, "-command="+r.name, "secret", plugin); err != nil {
			t.Fatal(err)
		}
	}
	out, err := srv.MustCLI("plugin", "list", "-detailed", "secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rels {
		if err := contains(out, plugin, r.version); err != nil {
			t.Fatalf("plugin list: %v", err)
		}
	}
}

// switchVersion moves mount to version the documented way: tune, then
// reload the plugin, then check the version Vault reports running.
func switchVersion(t *testing.T, srv *vaulttest.Server, plugin, mount, version string) {
	t.Helper()
	if _, err := srv.MustCLI("secrets", "tune", "-plugin-version="+version, mount); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.MustCLI("plugin", "reload", "-plugin="+plugin); err != nil {
		t.Fatal(err)
	}
	if got := runningVersion(t, srv, mount); got != version {
		t.Fatalf("after tune and reload the mount runs %q, want %s", got, version)
	}
}

// TestUpgradeAndDowngrade runs the upgrade procedure of the README on a
// real Vault: two releases side by side in the plugin directory, each
// registered with -version; a mount on the old one stores configs and
// tokens; `vault secrets tune -plugin-version=` plus `vault plugin reload`
// moves it to the new one, which serves the same configs and tokens without
// asking the bank; then the same back down.
func TestUpgradeAndDowngrade(t *testing.T) {
	t.Parallel()
	const oldV, newV, plugin = "v0.1.0", "v0.2.0", "bankauth-upgrade"
	srv := vault
	pluginDir, _, err := vaulttest.BuildPlugin()
	if err != nil {
		t.Fatal(err)
	}
	oldRel, newRel := upgradeReleases(t, oldV, newV)
	installReleases(t, srv, plugin, []string{pluginDir}, oldRel, newRel)

	emu := emulator.New(emulator.Options{})
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	b := &bankMount{emu: emu, url: hs.URL, srv: srv, mount: fmt.Sprintf("upgrade-%d", mountSeq.Add(1))}
	if _, err := srv.MustCLI("secrets", "enable", "-path="+b.mount, "-plugin-version="+oldV, plugin); err != nil {
		t.Fatal(err)
	}
	if got := runningVersion(t, srv, b.mount); got != oldV {
		t.Fatalf("running %q, want %s", got, oldV)
	}
	names := map[string]string{"rak": emulator.Rakbank, "etz": emulator.Etranzact, "isb": emulator.Isbank}
	tokens := map[string]string{}
	for name, provider := range names {
		// Long-lived tokens: any bank request after an upgrade is bankauth's doing.
		emu.SetTTL(provider, time.Hour)
		b.configure(t, name, provider)
		tokens[name] = b.readToken(t, name)["access_token"].(string)
	}
	readConfig := func(name string) map[string]any {
		t.Helper()
		sec, err := srv.Client.Logical().Read(b.mount + "/config/" + name)
		if err != nil || sec == nil {
			t.Fatalf("read config %s: %v", name, err)
		}
		return sec.Data
	}
	configs := map[string]map[string]any{}
	for name := range names {
		configs[name] = readConfig(name)
	}
	bankRequests := func() int {
		n := 0
		for _, p := range names {
			n += emu.Stats(p).Total
		}
		return n
	}

	servedWithoutBank := func(version string) {
		t.Helper()
		before := bankRequests()
		for name, want := range tokens {
			if got := b.readToken(t, name)["access_token"]; got != want {
				t.Errorf("%s: %s served a new token for %s instead of the stored one", version, version, name)
			}
			if got := readConfig(name); !reflect.DeepEqual(got, configs[name]) {
				t.Errorf("%s reads config %s differently:\n%v\nwas\n%v", version, name, got, configs[name])
			}
		}
		if n := bankRequests() - before; n != 0 {
			t.Errorf("%s made %d bank requests to serve stored tokens", version, n)
		}
	}

	switchVersion(t, srv, plugin, b.mount, newV)
	servedWithoutBank(newV)
	// The old release had no egress policy, so the mount's settings hold no
	// allow_loopback; the new one refuses loopback banks until an operator
	// allows them (docs/security.md, upgrade notes). This test's bank is on
	// 127.0.0.1.
	if _, err := srv.MustCLI("write", b.mount+"/settings", "allow_loopback=true"); err != nil {
		t.Fatal(err)
	}
	// A config written by the new version is served by the old one after a
	// downgrade, like those the old one wrote.
	b.configure(t, "rak2", emulator.Rakbank)
	tokens["rak2"] = b.readToken(t, "rak2")["access_token"].(string)
	configs["rak2"] = readConfig("rak2")

	switchVersion(t, srv, plugin, b.mount, oldV)
	servedWithoutBank(oldV)

	// Both versions fetch new tokens too: a forced refresh on the old one.
	before := bankRequests()
	if _, err := srv.MustCLI("write", "-f", b.mount+"/token/rak"); err != nil {
		t.Fatal(err)
	}
	if bankRequests() == before {
		t.Error("a forced refresh made no bank request")
	}
}

// TestUpgradeOnHACluster runs the HA upgrade of docs/install.md on a 3-node
// raft cluster: both releases in every node's plugin directory, the switch
// made once on the active node; after the active node dies, the new active
// node starts the version the mount names and serves the stored tokens
// without a bank request; the downgrade is made there.
func TestUpgradeOnHACluster(t *testing.T) {
	t.Parallel()
	const oldV, newV, plugin = "v0.1.0", "v0.2.0", "bankauth"
	oldRel, newRel := upgradeReleases(t, oldV, newV)
	c, err := vaulttest.StartCluster(3, vaulttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var handed []string
	defer func() { closeCluster(t, c, handed) }()
	active, err := c.WaitActive()
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, n := range c.Nodes {
		dirs = append(dirs, n.PluginDir())
	}
	installReleases(t, active, plugin, dirs, oldRel, newRel)

	emu := emulator.New(emulator.Options{})
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	b := &bankMount{emu: emu, url: hs.URL, srv: active, mount: "bankauth"}
	if _, err := active.MustCLI("secrets", "enable", "-path="+b.mount, "-plugin-version="+oldV, plugin); err != nil {
		t.Fatal(err)
	}
	for _, p := range emulator.Providers {
		emu.SetTTL(p, time.Hour)
		b.configure(t, p, p)
	}
	want := map[string]string{}
	for _, p := range emulator.Providers {
		want[p] = readVia(t, c.Nodes[1], b.mount, p)
		handed = append(handed, want[p])
	}
	readAll := func(when string) {
		t.Helper()
		for _, node := range c.Running() {
			for _, p := range emulator.Providers {
				if tok := readVia(t, node, b.mount, p); tok != want[p] {
					handed = append(handed, tok)
					t.Errorf("%s: %s: node %s served a new token", when, p, node.Addr)
				}
			}
		}
		wantFetches(t, b, 1, when)
	}

	switchVersion(t, active, plugin, b.mount, newV)
	readAll("after the upgrade")
	active.Kill()
	next, err := c.WaitActive()
	if err != nil {
		t.Fatal(err)
	}
	if got := runningVersion(t, next, b.mount); got != newV {
		t.Fatalf("the new active node runs %q, want %s", got, newV)
	}
	readAll("after failover to a node that started " + newV)

	switchVersion(t, next, plugin, b.mount, oldV)
	readAll("after the downgrade")
}
