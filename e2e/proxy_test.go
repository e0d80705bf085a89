//go:build e2e

package e2e

import (
	"crypto/tls"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/connectproxy"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/testpki"
)

// Banks allow-list source addresses, so egress goes through a proxy: the
// plugin process takes HTTPS_PROXY from its registration (vault plugin
// register -env) and reaches the bank through a real CONNECT proxy, with
// the default egress policy (no loopback) on: the proxy's own loopback
// address is trusted, the bank is asked for by name.
func TestEgressThroughProxyFromPluginEnv(t *testing.T) {
	t.Parallel()
	ca, err := testpki.NewCA("bank-ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.ServerFor("api.bank.example")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	emu := emulator.New(emulator.Options{})
	bankSrv := httptest.NewUnstartedServer(emu)
	bankSrv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	bankSrv.StartTLS()
	t.Cleanup(bankSrv.Close)
	bankAddr := strings.TrimPrefix(bankSrv.URL, "https://")
	proxy := connectproxy.Start(func(target string) string {
		if target == "api.bank.example:443" {
			return bankAddr
		}
		return "127.0.0.1:1" // anything else: refused
	})
	t.Cleanup(proxy.Close)

	if err := vault.RegisterPluginEnv("bankauth-proxied", "HTTPS_PROXY="+proxy.URL); err != nil {
		t.Fatal(err)
	}
	mount := "bankauth-proxied"
	if err := vault.Mount("bankauth-proxied", mount); err != nil {
		t.Fatal(err)
	}
	// Production settings: loopback refused, only the bank's name allowed.
	if _, err := vault.MustCLI("write", mount+"/settings", "allow_loopback=false", "allowed_hosts=api.bank.example"); err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPath, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	creds := emulator.DefaultCredentials()
	if _, err := vault.MustCLI("write", mount+"/config/etz", "provider=etranzact", "base_url=https://api.bank.example",
		"ca_cert=@"+caPath, "username="+creds.Username, "password="+creds.Password); err != nil {
		t.Fatal(err)
	}
	out, err := vault.MustCLI("read", "-field=access_token", mount+"/token/etz")
	if err != nil {
		t.Fatal(err)
	}
	if !emu.TokenValid(emulator.Etranzact, strings.TrimSpace(out)) {
		t.Fatalf("the bank does not know the token %q", out)
	}
	if got := proxy.Targets(); len(got) == 0 || got[0] != "api.bank.example:443" {
		t.Fatalf("proxy saw %v, want CONNECT api.bank.example:443", got)
	}
	// A host outside allowed_hosts is refused before the proxy is asked.
	if _, err := vault.MustCLI("write", mount+"/config/other", "provider=etranzact", "base_url=https://other.example",
		"username=u", "password=p"); err != nil {
		t.Fatal(err)
	}
	before := len(proxy.Targets())
	r := vault.CLI("", "read", mount+"/token/other")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "egress policy refuses other.example: not in allowed_hosts") {
		t.Fatalf("read outside allowed_hosts: exit %d %s", r.ExitCode, r.Stderr)
	}
	if len(proxy.Targets()) != before {
		t.Fatalf("a refused request reached the proxy: %v", proxy.Targets())
	}

	// A host that ends in a number is an IPv4 address (issue 18): the
	// proxy's resolver reads 2130706433 and 127.1 as 127.0.0.1 and
	// 169.254.43518 as 169.254.169.254. Only dotted-decimal is accepted,
	// with allowed_hosts empty too; the error names the field and the
	// rule, not the host, and the proxy is never asked.
	if _, err := vault.MustCLI("write", mount+"/settings", "allowed_hosts="); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"2130706433", "0177.0.0.1", "127.1", "0x7f.1", "169.254.43518"} {
		r := vault.CLI("", "write", mount+"/config/numeric", "provider=etranzact", "base_url=https://"+h,
			"username=u", "password=p")
		msg := ""
		for _, line := range strings.Split(r.Stderr, "\n") {
			if strings.Contains(line, "invalid base_url") {
				msg = line
			}
		}
		if r.ExitCode == 0 || !strings.Contains(msg, "IPv4") || strings.Contains(msg, h) {
			t.Errorf("base_url=https://%s: exit %d %s; want invalid base_url naming the rule, not the host", h, r.ExitCode, r.Stderr)
		}
	}
	if len(proxy.Targets()) != before {
		t.Fatalf("a numeric host reached the proxy: %v", proxy.Targets())
	}
}
