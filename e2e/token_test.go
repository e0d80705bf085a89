//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

func TestAllFourProvidersThroughVault(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	for _, p := range emulator.Providers {
		b.configure(t, p, p)
		// The CLI, as users run it.
		out, err := b.srv.MustCLI("read", "-format=json", b.mount+"/token/"+p)
		if err != nil {
			t.Fatal(err)
		}
		var sec struct {
			LeaseID       string         `json:"lease_id"`
			LeaseDuration int            `json:"lease_duration"`
			Renewable     bool           `json:"renewable"`
			Data          map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(out), &sec); err != nil {
			t.Fatal(err)
		}
		tok, _ := sec.Data["access_token"].(string)
		seen.add(tok)
		if !b.emu.TokenValid(p, tok) {
			t.Errorf("%s: token not valid at the bank", p)
		}
		for _, f := range []string{"token_type", "expires_in", "expires_at", "scope"} {
			if _, ok := sec.Data[f]; !ok {
				t.Errorf("%s: no %s in %v", p, f, sec.Data)
			}
		}
		if sec.Renewable || sec.LeaseID == "" || sec.LeaseDuration < 55 || sec.LeaseDuration > 60 {
			t.Errorf("%s: lease id=%q ttl=%d renewable=%t", p, sec.LeaseID, sec.LeaseDuration, sec.Renewable)
		}
		// Cached: a second read is served without the bank.
		if again := b.readToken(t, p); again["access_token"] != tok {
			t.Errorf("%s: second read returned another token", p)
		}
		if st := b.emu.Stats(p); st.Logins != 1 || st.Failed != 0 {
			t.Errorf("%s: bank stats %+v after two reads, want one login", p, st)
		}
	}
	if st := b.emu.Stats(emulator.Isbank); st.Codes != 1 {
		t.Errorf("isbank code requests %d, want 1", st.Codes)
	}
}

func TestConcurrentColdReadersOneBankRequest(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "rak", emulator.Rakbank)
	b.emu.SetLatency(emulator.Rakbank, 300*time.Millisecond)
	const readers = 200
	var wg sync.WaitGroup
	got := make([]string, readers)
	errs := make(chan error, readers)
	start := make(chan struct{})
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			sec, err := b.srv.Client.Logical().Read(b.mount + "/token/rak")
			if err != nil {
				errs <- err
				return
			}
			got[i], _ = sec.Data["access_token"].(string)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, tok := range got {
		if tok != got[0] || tok == "" {
			t.Fatal("readers got different tokens")
		}
	}
	seen.add(got[0])
	if st := b.emu.Stats(emulator.Rakbank); st.Total != 1 {
		t.Fatalf("%d bank requests for %d concurrent cold readers, want 1", st.Total, readers)
	}
}

func TestForceRefreshAndRefreshGrant(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.emu.SetTTL(emulator.Etranzact, 5*time.Second)
	b.configure(t, "etz", emulator.Etranzact)
	first := b.readToken(t, "etz")["access_token"]
	out, err := b.srv.MustCLI("write", "-f", "-field=access_token", b.mount+"/token/etz")
	if err != nil {
		t.Fatal(err)
	}
	forced := strings.TrimSpace(out)
	seen.add(forced)
	if forced == first || !b.emu.TokenValid(emulator.Etranzact, forced) {
		t.Fatal("vault write -f did not return a new valid token")
	}
	if b.readToken(t, "etz")["access_token"] != forced {
		t.Fatal("read after a forced refresh does not serve the forced token")
	}
	// Past four fifths of its life the token is stale: the next read uses the refresh grant.
	time.Sleep(4200 * time.Millisecond)
	if b.readToken(t, "etz")["access_token"] == forced {
		t.Fatal("stale token served")
	}
	if st := b.emu.Stats(emulator.Etranzact); st.Logins != 1 || st.Refreshes != 2 {
		t.Fatalf("bank stats %+v, want 1 login then 2 refresh grants", st)
	}
}

func TestConfigLifecycleThroughCLI(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "rak", emulator.Rakbank, `oauth_metadata={"account_id":"0188000049916"}`)
	out, err := b.srv.MustCLI("read", "-format=json", b.mount+"/config/rak")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range emulator.DefaultCredentials().Secrets() {
		if strings.Contains(out, s) {
			t.Fatalf("config read shows a secret: %s", out)
		}
	}
	if err := contains(out, `"client_secret_set": true`, `"account_id": "0188000049916"`, `"scope": "accounts"`); err != nil {
		t.Error(err)
	}
	last, _ := b.emu.LastRequest(emulator.Rakbank)
	first := b.readToken(t, "rak")["access_token"]
	if last, _ = b.emu.LastRequest(emulator.Rakbank); !strings.Contains(string(last.Body), `"oauth_metadata":{"account_id":"0188000049916"}`) {
		t.Errorf("bank got body %s", last.Body)
	}
	// An update drops the cached token.
	if _, err := b.srv.MustCLI("write", b.mount+"/config/rak", "scope=payments"); err != nil {
		t.Fatal(err)
	}
	second := b.readToken(t, "rak")
	if second["access_token"] == first || second["scope"] != "payments" {
		t.Fatalf("after update: scope %v, same token %t", second["scope"], second["access_token"] == first)
	}
	out, _ = b.srv.MustCLI("list", b.mount+"/config")
	if !strings.Contains(out, "rak") {
		t.Errorf("list: %s", out)
	}
	// Delete removes the config and the token.
	if _, err := b.srv.MustCLI("delete", b.mount+"/config/rak"); err != nil {
		t.Fatal(err)
	}
	r := b.srv.CLI("", "read", b.mount+"/token/rak")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, `no config named \"rak\"`) && !strings.Contains(r.Stderr, `no config named "rak"`) {
		t.Fatalf("read after delete: exit %d %s", r.ExitCode, r.Stderr)
	}
	// Recreated, it must fetch afresh rather than serve the deleted token.
	before := b.emu.Stats(emulator.Rakbank).Logins
	b.configure(t, "rak", emulator.Rakbank)
	if b.readToken(t, "rak")["access_token"] == second["access_token"] || b.emu.Stats(emulator.Rakbank).Logins != before+1 {
		t.Fatal("recreated config served the deleted config's token")
	}
}

func TestBadInputIs400NamingTheField(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "rak", emulator.Rakbank)
	before, _ := b.srv.MustCLI("read", "-format=json", b.mount+"/config/rak")
	cases := []struct {
		args  []string
		field string
	}{
		{[]string{"config/x", "provider=hsbc"}, "provider"},
		{[]string{"config/x", "client_id=abc"}, "provider"},
		{[]string{"config/x", "provider=etranzact", "username=u"}, "password"},
		{[]string{"config/x", "provider=isbank", "client_id=a", "client_secret=b", "service_account_id=c", "service_account_secret=d"}, "base_url"},
		{[]string{"config/rak", "username=u"}, "username"},
		{[]string{"config/rak", "oauth_metadata={account_id"}, "oauth_metadata"},
		{[]string{"config/rak", "base_url=http://bank.example"}, "base_url"},
		{[]string{"config/rak", "ca_cert=-----BEGIN CERTIFICATE-----"}, "ca_cert"},
		{[]string{"config/rak", "timeout=forever"}, "timeout"},
		{[]string{"config/rak", "colour=blue"}, "colour"},
	}
	for _, tc := range cases {
		args := append([]string{"write", b.mount + "/" + tc.args[0]}, tc.args[1:]...)
		r := b.srv.CLI("", args...)
		if r.ExitCode == 0 || contains(r.Stderr, "Code: 400", tc.field) != nil {
			t.Errorf("vault %s: exit %d, stderr %s; want a 400 naming %s", strings.Join(args, " "), r.ExitCode, r.Stderr, tc.field)
		}
	}
	after, _ := b.srv.MustCLI("read", "-format=json", b.mount+"/config/rak")
	if strip(before) != strip(after) {
		t.Errorf("rejected writes changed the config:\n%s\n%s", before, after)
	}
	if r := b.srv.CLI("", "read", b.mount+"/config/x"); r.ExitCode == 0 {
		t.Errorf("a rejected create left config/x: %s", r.Stdout)
	}
}

// strip drops the per-response request_id so two reads can be compared.
func strip(s string) string {
	var v map[string]any
	json.Unmarshal([]byte(s), &v)
	delete(v, "request_id")
	b, _ := json.Marshal(v)
	return string(b)
}

func TestUpstreamErrorReachesTheReader(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	b.configure(t, "rak", emulator.Rakbank)
	b.configure(t, "ac", emulator.AccelerationCloud)
	b.emu.FailNext(emulator.Rakbank, 1, emulator.Failure{Status: 401,
		Body: `{"status":"401","response_code":"RAK-401-02","response_message":"Invalid client","description":"client not subscribed"}`})
	r := b.srv.CLI("", "read", b.mount+"/token/rak")
	if r.ExitCode == 0 {
		t.Fatal("read succeeded despite a bank failure")
	}
	if err := contains(r.Stderr, "Code: 502", "config rak: rakbank token request failed", "HTTP 401", "RAK-401-02", "Invalid client"); err != nil {
		t.Error(err)
	}
	// Acceleration Cloud reports failures with HTTP 200.
	b.emu.FailNext(emulator.AccelerationCloud, 1, emulator.Failure{Status: 200})
	r = b.srv.CLI("", "read", b.mount+"/token/ac")
	if err := contains(r.Stderr, "Code: 502", "accelerationcloud", "authentication failed"); r.ExitCode == 0 || err != nil {
		t.Errorf("exit %d: %v", r.ExitCode, err)
	}
	for _, s := range emulator.DefaultCredentials().Secrets() {
		if strings.Contains(r.Stderr, s) {
			t.Error("error shows a secret")
		}
	}
}

func TestHTTPSBankWithCACert(t *testing.T) {
	t.Parallel()
	b := newBank(t, nil)
	tlsSrv, pemPath := startTLSEmulator(t, b)
	b.url = tlsSrv
	r := b.srv.CLI("", append([]string{"write", b.mount + "/config/etz"},
		kv(emulator.ConfigData(emulator.Etranzact, tlsSrv, emulator.DefaultCredentials()))...)...)
	if r.ExitCode != 0 {
		t.Fatal(r.Stderr)
	}
	if r := b.srv.CLI("", "read", b.mount+"/token/etz"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "certificate") {
		t.Fatalf("untrusted bank certificate accepted: exit %d %s", r.ExitCode, r.Stderr)
	}
	// Trusting a new CA changes who may receive the password: it comes along.
	if _, err := b.srv.MustCLI("write", b.mount+"/config/etz", "ca_cert=@"+pemPath,
		"password="+emulator.DefaultCredentials().Password); err != nil {
		t.Fatal(err)
	}
	if tok := b.readToken(t, "etz")["access_token"].(string); !b.emu.TokenValid(emulator.Etranzact, tok) {
		t.Fatal("token over https not valid")
	}
}

func TestSeveralMountsAndVersion(t *testing.T) {
	t.Parallel()
	a, c := newBank(t, nil), newBank(t, nil)
	a.configure(t, "same", emulator.Etranzact)
	c.configure(t, "same", emulator.AccelerationCloud)
	if a.readToken(t, "same")["access_token"] == c.readToken(t, "same")["access_token"] {
		t.Fatal("two mounts share a token")
	}
	mounts, err := vault.Client.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	m := mounts[a.mount+"/"]
	if m == nil || m.RunningVersion != "v0.1.0" {
		t.Fatalf("mount %s running version %+v", a.mount, m)
	}
}
