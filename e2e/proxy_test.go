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
}
