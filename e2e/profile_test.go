//go:build e2e

package e2e

import (
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/fakebank"
)

// docsProfile is the worked example's profile file, so the docs are what
// is tested.
func docsProfile(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "docs", "profiles", name)
}

// TestCustomProfileInterswitch follows docs/custom-profile.md on a real
// Vault: add Interswitch Passport (not built in) as a profile with the
// vault CLI, configure a connection, read tokens, and try what the page
// says is refused.
func TestCustomProfileInterswitch(t *testing.T) {
	t.Parallel()
	const secret = "isw/e2e+secret=="
	bank := fakebank.NewInterswitch("IKIAE2E0000000000000000000000000000000", secret, 20*time.Minute)
	srv := httptest.NewServer(bank)
	t.Cleanup(srv.Close)
	b := newBank(t, nil)
	m := b.mount

	// 1. The profile.
	if _, err := b.srv.MustCLI("write", m+"/profile/interswitch", "profile=@"+docsProfile("interswitch.json")); err != nil {
		t.Fatal(err)
	}
	out, err := b.srv.MustCLI("list", m+"/profile")
	if err != nil || !strings.Contains(out, "interswitch") || !strings.Contains(out, "rakbank") {
		t.Fatalf("profile list: %v\n%s", err, out)
	}
	// 2. A connection that uses it.
	if _, err := b.srv.MustCLI("write", m+"/config/interswitch", "provider=interswitch", "base_url="+srv.URL,
		"client_id="+bank.ClientID, "client_secret="+secret); err != nil {
		t.Fatal(err)
	}
	out, err = b.srv.MustCLI("read", "-format=json", m+"/config/interswitch")
	if err != nil || strings.Contains(out, secret) || !strings.Contains(out, `"client_secret_set": true`) {
		t.Fatalf("config read: %v\n%s", err, out)
	}
	// 3. Tokens: cached, leased for the token's life.
	first := b.readToken(t, "interswitch")
	tok, _ := first["access_token"].(string)
	if !bank.Valid(tok) || first["scope"] != "profile" {
		t.Fatalf("token %v not valid at the bank", first)
	}
	out, err = b.srv.MustCLI("read", "-field=access_token", m+"/token/interswitch")
	if err != nil || strings.TrimSpace(out) != tok || bank.Calls() != 1 {
		t.Fatalf("second read: %v, %d bank calls", err, bank.Calls())
	}
	sec, err := b.srv.Client.Logical().Read(m + "/token/interswitch")
	if err != nil || sec.Renewable || sec.LeaseDuration < 19*60 || sec.LeaseDuration > 20*60 {
		t.Fatalf("lease %+v %v", sec, err)
	}
	// 4. What is refused, with the reason.
	r := b.srv.CLI("", "write", m+"/profile/broken", `profile={"steps":[{"name":"token","method":"POST","path":"passport"}]}`)
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "invalid profile: steps[0].path: must start with /") {
		t.Fatalf("broken profile: exit %d %s", r.ExitCode, r.Stderr)
	}
	r = b.srv.CLI("", "delete", m+"/profile/interswitch")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, `profile "interswitch" is in use by config interswitch`) {
		t.Fatalf("delete in use: exit %d %s", r.ExitCode, r.Stderr)
	}
	if _, err := b.srv.MustCLI("write", m+"/config/interswitch", "client_secret=wrong-secret"); err != nil {
		t.Fatal(err)
	}
	r = b.srv.CLI("", "read", m+"/token/interswitch")
	if err := contains(r.Stderr, "interswitch token request failed: HTTP 401: bank code invalid_client: Bad client credentials"); r.ExitCode == 0 || err != nil {
		t.Fatalf("wrong secret: exit %d %v", r.ExitCode, err)
	}
	if _, err := b.srv.MustCLI("delete", m+"/config/interswitch"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.srv.MustCLI("delete", m+"/profile/interswitch"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.srv.Log(), secret) {
		t.Error("Vault's log shows the client secret")
	}
}

// A profile's own fields, unknown to the config path's schema, travel
// through the real Vault API and CLI like any other.
func TestCustomProfileOwnFieldsThroughVault(t *testing.T) {
	t.Parallel()
	const secret = "own-field-secret-9"
	bank := fakebank.NewInterswitch("IKIA-own", secret, 10*time.Minute)
	srv := httptest.NewServer(bank)
	t.Cleanup(srv.Close)
	b := newBank(t, nil)
	doc := `{"fields":[{"name":"merchant_id","required":true},{"name":"merchant_key","secret":true,"required":true},{"name":"terminal_id"}],
	  "steps":[{"name":"token","method":"POST","path":"/passport/oauth/token","headers":{"X-Terminal-ID":"{{field.terminal_id}}"},
	    "basic_auth":{"username":"{{field.merchant_id}}","password":"{{field.merchant_key}}"},
	    "body":{"type":"form","fields":{"grant_type":"client_credentials"}}}]}`
	if _, err := b.srv.MustCLI("write", b.mount+"/profile/own", "profile="+doc); err != nil {
		t.Fatal(err)
	}
	if _, err := b.srv.MustCLI("write", b.mount+"/config/own", "provider=own", "base_url="+srv.URL,
		"merchant_id=IKIA-own", "merchant_key="+secret, "terminal_id=T-77"); err != nil {
		t.Fatal(err)
	}
	out, err := b.srv.MustCLI("read", "-format=json", b.mount+"/config/own")
	if err != nil || strings.Contains(out, secret) || contains(out, `"merchant_key_set": true`, `"terminal_id": "T-77"`, `"merchant_id": "IKIA-own"`) != nil {
		t.Fatalf("config read: %v\n%s", err, out)
	}
	if tok, _ := b.readToken(t, "own")["access_token"].(string); !bank.Valid(tok) {
		t.Fatal("token not valid at the bank")
	}
	r := b.srv.CLI("", "write", b.mount+"/config/own2", "provider=own", "base_url="+srv.URL, "merchant_id=x")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "invalid merchant_key: is required for provider own") {
		t.Fatalf("missing profile field: exit %d %s", r.ExitCode, r.Stderr)
	}
}
