//go:build e2e

package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// rawAnswer is a raw HTTP answer of Vault's API.
type rawAnswer struct {
	status int
	body   string
	errors []string
}

// data is the answer's data object as compact JSON.
func (a rawAnswer) data(t *testing.T) string {
	t.Helper()
	var v struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(a.body), &v); err != nil {
		t.Fatalf("answer %d is not JSON: %v", a.status, err)
	}
	return string(v.Data)
}

// rawRequest sends a JSON body to Vault's HTTP API as any client could,
// with the root token.
func rawRequest(t *testing.T, srv *vaulttest.Server, method, path string, body any) rawAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		enc, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, srv.Addr+"/v1/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", srv.RootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var parsed struct {
		Errors []string `json:"errors"`
	}
	_ = json.Unmarshal(raw, &parsed)
	return rawAnswer{status: resp.StatusCode, body: string(raw), errors: parsed.Errors}
}

// TestHostileInputThroughVault sends, through Vault's whole request path
// (existence check, audit device, trace log), the inputs that once leaked
// a secret or earned a 500, and checks each gets a 400 naming the field
// or rule and that no sent secret appears in any answer, Vault's log or
// the audit log.
func TestHostileInputThroughVault(t *testing.T) {
	srv := ownVault(t, vaulttest.Options{})
	auditLog := filepath.Join(srv.Dir(), "audit.log")
	if _, err := srv.MustCLI("audit", "enable", "file", "file_path="+auditLog); err != nil {
		t.Fatal(err)
	}
	b := newBank(t, srv)
	b.configure(t, "etz", emulator.Etranzact)
	if _, err := srv.MustCLI("write", b.mount+"/key/k", "type=ec-p256", "purpose=request_signing"); err != nil {
		t.Fatal(err)
	}
	before := rawRequest(t, srv, "GET", b.mount+"/config/etz", nil).data(t)

	// 1. A secret sent as another JSON type than the field takes.
	pemKey := "-----BEGIN PRIVATE KEY-----\ncanary-pem-5c1e\n-----END PRIVATE KEY-----\n"
	canaries := []string{"canary-pw-1", "canary-cs-2", "canary-sas-3", "canary-pk-4", "canary-tck-5", "canary-pem-5c1e"}
	for _, c := range []struct {
		path, field string
		value       any
	}{
		{"config/etz", "password", []any{"canary-pw-1"}},
		{"config/new", "client_secret", map[string]any{"v": "canary-cs-2"}},
		{"config/new", "service_account_secret", []any{"canary-sas-3"}},
		{"config/etz", "private_key", []any{"canary-pk-4"}},
		{"config/etz", "tls_client_key", []any{"canary-tck-5"}},
		{"key/k2", "key", []any{pemKey}},
		{"key/k", "key", []any{pemKey}},
	} {
		a := rawRequest(t, srv, "POST", b.mount+"/"+c.path, map[string]any{c.field: c.value})
		want := "invalid " + c.field + ": expected a string"
		if a.status != 400 || !slices.Equal(a.errors, []string{want}) {
			t.Errorf("%s %s as %T: %d %v, want 400 %q", c.path, c.field, c.value, a.status, a.errors, want)
		}
	}
	if after := rawRequest(t, srv, "GET", b.mount+"/config/etz", nil).data(t); after != before {
		t.Errorf("a rejected write changed config/etz: %s -> %s", before, after)
	}
	if a := rawRequest(t, srv, "GET", b.mount+"/key/k2", nil); a.status != 404 || !slices.Equal(a.errors, []string{"key/k2: not found"}) {
		t.Errorf("a rejected import stored key k2, or its 404 says nothing: %d %v", a.status, a.errors)
	}

	// 2. JSON objects where the docs promise them, as objects and strings.
	rak := emulator.ConfigData(emulator.Rakbank, b.url, emulator.DefaultCredentials())
	rak["oauth_metadata"] = map[string]any{"account_id": "0188000049916"}
	if a := rawRequest(t, srv, "POST", b.mount+"/config/rak", rak); a.status/100 != 2 {
		t.Errorf("oauth_metadata as an object: %d %v", a.status, a.errors)
	}
	b.readToken(t, "rak")
	if _, err := srv.MustCLI("write", b.mount+"/config/rak", `oauth_metadata={"account_id":"0188000049917"}`); err != nil {
		t.Errorf("oauth_metadata as a string through the CLI: %v", err)
	}
	profile := map[string]any{}
	doc, err := os.ReadFile(docsProfile("interswitch.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc, &profile); err != nil {
		t.Fatal(err)
	}
	if a := rawRequest(t, srv, "POST", b.mount+"/profile/hostile", map[string]any{"profile": profile}); a.status/100 != 2 {
		t.Errorf("profile as an object: %d %v", a.status, a.errors)
	}

	// 3. Names that storage refuses: a 400 naming the rule, never a 500.
	for _, p := range []string{"config/a..b", "key/a..b", "profile/a..b", "key/a..b/csr", "sign/a..b", "token/a..b"} {
		a := rawRequest(t, srv, "POST", b.mount+"/"+p, map[string]any{"type": "ec-p256"})
		if a.status != 400 || len(a.errors) != 1 || !strings.HasPrefix(a.errors[0], "invalid name: a name is 1 to 128") {
			t.Errorf("write %s: %d %v, want 400 naming the rule", p, a.status, a.errors)
		}
		if !strings.HasSuffix(p, "csr") && !strings.HasPrefix(p, "sign") {
			for _, m := range []string{"GET", "DELETE"} {
				if a := rawRequest(t, srv, m, b.mount+"/"+p, nil); a.status != 400 || !strings.HasPrefix(strings.Join(a.errors, ""), "invalid name:") {
					t.Errorf("%s %s: %d %v, want 400 naming the rule", m, p, a.status, a.errors)
				}
			}
		}
	}

	// 4. A CSR for an internationalised name: its IDNA form, not a 500.
	a := rawRequest(t, srv, "POST", b.mount+"/key/k/csr", map[string]any{"common_name": "tpp", "dns_names": []any{"ü.example", "ü"}})
	if a.status != 200 {
		t.Fatalf("csr with dns_names ü: %d %v", a.status, a.errors)
	}
	var out struct {
		Data struct {
			CSR string `json:"csr"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(a.body), &out); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(out.Data.CSR))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(csr.DNSNames, []string{"xn--tda.example", "xn--tda"}) {
		t.Errorf("csr dns names %v", csr.DNSNames)
	}
	if a := rawRequest(t, srv, "POST", b.mount+"/key/k/csr", map[string]any{"common_name": "tpp", "dns_names": "a b"}); a.status != 400 ||
		!slices.Equal(a.errors, []string{"invalid dns_names: entry 1 is not a DNS host name"}) {
		t.Errorf("csr with a bad dns name: %d %v", a.status, a.errors)
	}

	var audit []byte
	// No secret sent above is anywhere: answers were checked; now Vault's
	// trace log and the audit log.
	audit, err = os.ReadFile(auditLog)
	if err != nil || len(audit) == 0 {
		t.Fatalf("audit log: %v (%d bytes)", err, len(audit))
	}
	for _, c := range canaries {
		if strings.Contains(srv.Log(), c) {
			t.Errorf("Vault's log holds the secret %s", c)
		}
		if bytes.Contains(audit, []byte(c)) {
			t.Errorf("the audit log holds the secret %s", c)
		}
	}
	if strings.Contains(srv.Log(), "failed to run existence check") {
		t.Error("Vault logged a failed existence check")
	}
}
