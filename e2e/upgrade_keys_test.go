//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// keysUpgradeFrom is the commit the old release of the keys upgrade test
// is built from: the last one whose keys had no purposes or pins.
// KEYS_UPGRADE_FROM overrides it (any git ref).
const keysUpgradeFrom = "62feaa7b01ce9c1cf8e7457427577ebe088c76a9"

// TestUpgradeGivesKeysTheirConfigsPurposes: keys and configs stored by a
// release without key purposes, then the documented upgrade (tune and
// reload). Each key gets the purposes its configs use it for, a signing
// key the endpoint and audience of its config as pins, an unused key
// request_signing; the new release stores them when it starts (its log
// says so), serves the stored token, fetches new ones within the pins and
// refuses a redirect. After a downgrade the old release still serves the
// config.
func TestUpgradeGivesKeysTheirConfigsPurposes(t *testing.T) {
	t.Parallel()
	// Versions of their own: TestUpgradeAndDowngrade's binaries share the
	// plugin directory.
	const oldV, newV, plugin = "v0.1.8", "v0.2.8", "bankauth-keys-upgrade"
	ref := os.Getenv("KEYS_UPGRADE_FROM")
	if ref == "" {
		ref = keysUpgradeFrom
	}
	srv := vault
	oldRel, newRel := upgradeReleasesFrom(t, ref, oldV, newV)
	installReleases(t, srv, plugin, []string{srv.PluginDir()}, oldRel, newRel)
	mount := "keys-upgrade"
	if _, err := srv.MustCLI("secrets", "enable", "-path="+mount, "-plugin-version="+oldV, plugin); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.MustCLI("write", mount+"/settings", "allow_loopback=true"); err != nil {
		t.Fatal(err)
	}
	bank, evil := newTokenHost(t), newTokenHost(t)
	for _, k := range []string{"sig", "dp", "doc"} {
		if _, err := srv.MustCLI("write", mount+"/key/"+k, "type=ec-p256"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.MustCLI("write", mount+"/config/ob", "provider=oauth2", "token_url="+bank.URL+"/token", "client_id=tpp",
		"auth_method=private_key_jwt", "signing_key=sig", "dpop_key=dp", "assertion_audience="+bank.URL); err != nil {
		t.Fatal(err)
	}
	readTok := func(args ...string) string {
		t.Helper()
		out, err := srv.MustCLI(append(args, "-field=access_token", mount+"/token/ob")...)
		if err != nil {
			t.Fatal(err)
		}
		tok := strings.TrimSpace(out)
		seen.add(tok)
		return tok
	}
	stored := readTok("read")

	switchVersion(t, srv, plugin, mount, newV)
	want := map[string][3]string{
		"sig": {`["client_auth"]`, `["` + bank.URL + `/token"]`, `["` + bank.URL + `"]`},
		"dp":  {`["dpop"]`, `[]`, `[]`},
		"doc": {`["request_signing"]`, `[]`, `[]`},
	}
	for k, w := range want {
		d := cliJSON(t, "read", mount+"/key/"+k)
		if got := [3]string{jsonText(d["purpose"]), jsonText(d["allowed_endpoints"]), jsonText(d["allowed_audiences"])}; got != w {
			t.Errorf("after the upgrade key %s reads %v, want %v", k, got, w)
		}
	}
	if n := strings.Count(srv.Log(), "key from an earlier release given the purposes its configs use it for"); n < 3 {
		t.Errorf("the new release logged storing %d keys' purposes, want 3", n)
	}
	if got := readTok("read"); got != stored {
		t.Error("the new release fetched a token instead of serving the stored one")
	}
	readTok("write", "-f")
	if n, _ := bank.seen(t); n != 2 {
		t.Errorf("the bank got %d requests, want 2", n)
	}
	if _, err := srv.MustCLI("write", mount+"/sign/doc", "format=jws_detached", "payload=e30="); err != nil {
		t.Error(err)
	}
	for _, args := range [][]string{
		{"write", mount + "/sign/sig", "format=jws_detached", "payload=e30="},
		{"write", mount + "/config/ob", "token_url=" + evil.URL + "/token"},
	} {
		if r := srv.CLI("", args...); r.ExitCode == 0 || !strings.Contains(r.Stderr, "Code: 400") {
			t.Errorf("vault %s after the upgrade: exit %d %s", strings.Join(args, " "), r.ExitCode, r.Stderr)
		}
	}

	switchVersion(t, srv, plugin, mount, oldV)
	readTok("write", "-f")
	if n, _ := evil.seen(t); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
}

// jsonText is v as JSON.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
