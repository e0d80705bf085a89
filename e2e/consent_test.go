//go:build e2e

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/oidcop"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

const (
	consentClient   = "bankauth-e2e"
	consentRedirect = "https://app.example/cb"
	// consentTokenTTL is the bank's access token lifetime (seconds): short,
	// so readers find a stale token within the test.
	consentTokenTTL = 6
)

// consentRig is a Vault of the test's own (audit device on) with bankauth
// mounted, and oidc-provider as a FAPI 2.0 bank that knows the client by
// the JWK Set Vault publishes for its signing key.
type consentRig struct {
	srv   *vaulttest.Server
	mount string
	op    *oidcop.Server
	audit string
}

func newConsentRig(t *testing.T, opts vaulttest.Options, tokenTTL int) *consentRig {
	t.Helper()
	srv := ownVault(t, opts)
	r := &consentRig{srv: srv, mount: "bankauth", audit: filepath.Join(srv.Dir(), "audit.log")}
	if _, err := srv.MustCLI("audit", "enable", "file", "file_path="+r.audit); err != nil {
		t.Fatal(err)
	}
	if err := srv.Mount("bankauth", r.mount); err != nil {
		t.Fatal(err)
	}
	r.cli(t, "write", r.mount+"/key/obsig", "type=ec-p256", "purpose=client_auth", "public_jwks=true")
	r.cli(t, "write", r.mount+"/key/obdpop", "type=ec-p256", "purpose=dpop")
	resp, err := http.Get(srv.Addr + "/v1/" + r.mount + "/jwks/obsig")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	op, err := oidcop.Start(oidcop.Options{FAPI: "2.0", DPoPNonce: true, AccessTokenTTL: tokenTTL, Clients: []oidcop.Client{{
		ClientID: consentClient, RedirectURIs: []string{consentRedirect}, TokenEndpointAuthMethod: "private_key_jwt",
		TokenEndpointAuthSigningAlg: "ES256", JWKS: jwks, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, DPoPBoundAccessTokens: true, IDTokenSignedResponseAlg: "ES256",
		AuthorizationDetailsTypes: []string{"account_information"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(op.Log())
		}
		op.Close()
	})
	r.op = op
	r.cli(t, "write", r.mount+"/key/obsig", "allowed_endpoints="+op.Issuer+"/", "allowed_audiences="+op.Issuer)
	return r
}

// configure writes config/ob: the example config against the rig's bank.
func (r *consentRig) configure(t *testing.T) {
	t.Helper()
	r.cli(t, "write", r.mount+"/config/ob", "provider=oauth2", "grant_type=authorization_code", "issuer="+r.op.Issuer,
		"client_id="+consentClient, "auth_method=private_key_jwt", "signing_key=obsig", "dpop_key=obdpop",
		"redirect_uris="+consentRedirect, "scope=openid accounts offline_access", "fapi=2.0")
}

// cli runs the vault CLI with -format=json and returns the answer's data.
func (r *consentRig) cli(t *testing.T, args ...string) map[string]any {
	t.Helper()
	args = append([]string{args[0], "-format=json"}, args[1:]...)
	out, err := r.srv.MustCLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) == "" {
		return nil
	}
	var sec struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &sec); err != nil {
		t.Fatalf("vault %v: %v\n%s", args, err, out)
	}
	return sec.Data
}

// cliFails runs the vault CLI expecting a failure whose output names want.
func (r *consentRig) cliFails(t *testing.T, want string, args ...string) string {
	t.Helper()
	res := r.srv.CLI("", args...)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr+res.Stdout, want) {
		t.Fatalf("vault %s: exit %d, want a failure naming %q: %s%s", strings.Join(args, " "), res.ExitCode, want, res.Stdout, res.Stderr)
	}
	return res.Stderr + res.Stdout
}

// follow is the automated user: it opens the authorization URL with a
// cookie jar and stops at the redirect URI, whose URL it returns.
func follow(t *testing.T, authURL string, header http.Header) string {
	t.Helper()
	loc, err := oidcop.Follow(authURL, consentRedirect, header)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// begin writes consent/ob/<id> and returns the authorization URL.
func (r *consentRig) begin(t *testing.T, id string) string {
	t.Helper()
	got := r.cli(t, "write", "-f", r.mount+"/consent/ob/"+id)
	u, _ := got["authorization_url"].(string)
	if got["state"] != "pending" || got["expires_at"] == nil || !strings.HasPrefix(u, r.op.Issuer+"/") {
		t.Fatalf("consent write answered %v", got)
	}
	if q, _ := url.Parse(u); len(q.Query()) != 2 || q.Query().Get("request_uri") == "" || q.Query().Get("client_id") != consentClient {
		t.Errorf("authorization_url has more than client_id and request_uri")
	}
	return u
}

// TestConsentThroughVault is issue 19's first slice on a real Vault, against
// oidc-provider (OpenID certified) in its FAPI 2.0 profile with DPoP nonces:
// the config discovers the issuer; a consent runs PAR, the automated user and
// the callback through the vault CLI; the token is DPoP-bound, refreshed with
// rotation (forced, and once for 20 readers of an expired token); denial,
// wrong state, wrong iss and a replayed code are refused; a withdrawal at the
// bank revokes the consent; deletion revokes the refresh token at the bank.
// No code, state or token appears in a consent read, Vault's log or the audit
// log.
func TestConsentThroughVault(t *testing.T) {
	r := newConsentRig(t, vaulttest.Options{}, consentTokenTTL)
	m := r.mount
	r.configure(t)
	cfg := r.cli(t, "read", m+"/config/ob")
	for _, f := range []string{"authorization_url", "par_url", "token_url", "revocation_url", "jwks_uri"} {
		if s, _ := cfg[f].(string); !strings.HasPrefix(s, r.op.Issuer+"/") {
			t.Errorf("config read: %s = %v", f, cfg[f])
		}
	}
	r.cliFails(t, "token/ob/<consent>", "read", m+"/token/ob")

	var secrets []string // codes and states the bank sent, tokens Vault handed out
	// The whole flow.
	loc := follow(t, r.begin(t, "alice"), nil)
	q, _ := url.Parse(loc)
	secrets = append(secrets, q.Query().Get("code"), q.Query().Get("state"))
	cb := r.cli(t, "write", m+"/consent/ob/alice/callback", "callback_url="+loc)
	if cb["state"] != "authorized" || cb["sub"] != "alice" {
		t.Fatalf("callback answered %v", cb)
	}
	// The code cannot be replayed: its attempt was consumed.
	r.cliFails(t, "no authorization attempt", "write", m+"/consent/ob/alice/callback", "callback_url="+loc)
	read := r.cli(t, "read", m+"/consent/ob/alice")
	if read["state"] != "authorized" || read["sub"] != "alice" || read["authorized_at"] == nil || read["created_at"] == nil {
		t.Errorf("consent read %v", read)
	}
	tok := r.cli(t, "read", m+"/token/ob/alice")
	first, _ := tok["access_token"].(string)
	seen.add(first)
	secrets = append(secrets, first)
	if tok["token_type"] != "DPoP" || first == "" || tok["expires_at"] == nil {
		t.Fatalf("token read %v", tok)
	}
	sec, err := r.srv.Client.Logical().Read(m + "/token/ob/alice")
	if err != nil || sec.LeaseDuration <= 0 || sec.LeaseDuration > consentTokenTTL || sec.Renewable {
		t.Errorf("lease %v %v", sec, err)
	}

	// A forced refresh rotates the refresh token.
	consumed := r.op.Events("refresh_token.consumed")
	forced := r.cli(t, "write", "-f", m+"/token/ob/alice")
	second, _ := forced["access_token"].(string)
	seen.add(second)
	secrets = append(secrets, second)
	if second == "" || second == first || r.op.Events("refresh_token.consumed") != consumed+1 {
		t.Errorf("forced refresh: new token %v, bank refreshes %d", second != first, r.op.Events("refresh_token.consumed")-consumed)
	}
	if r.cli(t, "read", m+"/consent/ob/alice")["last_refresh_at"] == nil {
		t.Error("last_refresh_at not set")
	}

	// 20 readers after expiry cost one refresh.
	time.Sleep(consentTokenTTL * time.Second)
	consumed = r.op.Events("refresh_token.consumed")
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]bool{}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := r.srv.Client.Logical().Read(m + "/token/ob/alice")
			if err != nil || s == nil {
				t.Errorf("concurrent read: %v", err)
				return
			}
			at, _ := s.Data["access_token"].(string)
			seen.add(at)
			mu.Lock()
			got[at] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(got) != 1 || got[second] || r.op.Events("refresh_token.consumed") != consumed+1 {
		t.Errorf("20 readers: %d distinct tokens (old among them: %v), %d bank refreshes", len(got), got[second], r.op.Events("refresh_token.consumed")-consumed)
	}
	for at := range got {
		secrets = append(secrets, at)
	}

	// Denial.
	loc = follow(t, r.begin(t, "bob"), http.Header{"X-Test-Decision": {"deny"}})
	denied := r.cli(t, "write", m+"/consent/ob/bob/callback", "callback_url="+loc)
	if denied["state"] != "denied" || !strings.Contains(denied["last_error"].(string), "access_denied") {
		t.Errorf("denial answered %v", denied)
	}
	r.cliFails(t, "needs re-authorization", "read", m+"/token/ob/bob")

	// Wrong state, then the right one: the attempt is gone.
	loc = follow(t, r.begin(t, "carol"), nil)
	q, _ = url.Parse(loc)
	secrets = append(secrets, q.Query().Get("code"), q.Query().Get("state"))
	r.cliFails(t, "state", "write", m+"/consent/ob/carol/callback", "code="+q.Query().Get("code"),
		"state=not-the-state", "iss="+q.Query().Get("iss"))
	r.cliFails(t, "no authorization attempt", "write", m+"/consent/ob/carol/callback", "callback_url="+loc)

	// Wrong iss (RFC 9207): a mix-up is refused.
	loc = follow(t, r.begin(t, "dave"), nil)
	q, _ = url.Parse(loc)
	secrets = append(secrets, q.Query().Get("code"), q.Query().Get("state"))
	r.cliFails(t, "iss", "write", m+"/consent/ob/dave/callback", "code="+q.Query().Get("code"),
		"state="+q.Query().Get("state"), "iss=https://evil.example")

	// JSON fields through the HTTP API: claims as an object reaches the
	// bank; authorization_details as an array does too, and the bank's
	// refusal (this one wants a resource indicator with it) is a 502 naming
	// the step and its error, with nothing stored.
	a := rawRequest(t, r.srv, "POST", m+"/consent/ob/erin", map[string]any{
		"claims": map[string]any{"id_token": map[string]any{"acr": map[string]any{"essential": false}}}})
	if a.status != 200 || !strings.Contains(a.body, "authorization_url") {
		t.Errorf("consent write with claims: %d %s", a.status, a.errors)
	}
	a = rawRequest(t, r.srv, "POST", m+"/consent/ob/frank", map[string]any{
		"authorization_details": []any{map[string]any{"type": "account_information", "actions": []any{"read"}}}})
	if a.status != 502 || len(a.errors) != 1 || !strings.Contains(a.errors[0], "consent ob/frank: par: refused (HTTP 400): error=invalid_target") {
		t.Errorf("consent write with authorization_details: %d %s", a.status, a.errors)
	}
	a = rawRequest(t, r.srv, "POST", m+"/consent/ob/frank", map[string]any{"authorization_details": map[string]any{"type": "x"}})
	if a.status != 400 || len(a.errors) != 1 || !strings.HasPrefix(a.errors[0], "invalid authorization_details: must be a JSON array") {
		t.Errorf("authorization_details as an object: %d %s", a.status, a.errors)
	}

	// Withdrawal at the bank: the next refresh makes the consent revoked.
	if err := r.op.Withdraw("alice"); err != nil {
		t.Fatal(err)
	}
	r.cliFails(t, "consent ob/alice needs re-authorization", "write", "-f", m+"/token/ob/alice")
	if st := r.cli(t, "read", m+"/consent/ob/alice")["state"]; st != "revoked" {
		t.Errorf("after withdrawal: state %v", st)
	}
	consumed = r.op.Events("refresh_token.consumed")
	r.cliFails(t, "consent ob/alice needs re-authorization", "read", m+"/token/ob/alice")
	if r.op.Events("refresh_token.consumed") != consumed {
		t.Error("a revoked consent still reached the bank")
	}

	// Re-authorization, then deletion revokes the refresh token at the bank.
	loc = follow(t, r.begin(t, "alice"), nil)
	q, _ = url.Parse(loc)
	secrets = append(secrets, q.Query().Get("code"), q.Query().Get("state"))
	if st := r.cli(t, "write", m+"/consent/ob/alice/callback", "callback_url="+loc)["state"]; st != "authorized" {
		t.Fatalf("re-authorization: %v", st)
	}
	at, _ := r.cli(t, "read", m+"/token/ob/alice")["access_token"].(string)
	seen.add(at)
	secrets = append(secrets, at)
	list, err := r.srv.Client.Logical().List(m + "/consent/ob")
	if err != nil || list == nil {
		t.Fatalf("consent list: %v", err)
	}
	if keys, _ := list.Data["keys"].([]any); len(keys) != 5 {
		t.Errorf("consent list %v", list.Data)
	}
	destroyed := r.op.Events("refresh_token.destroyed")
	r.cli(t, "delete", m+"/consent/ob/alice")
	if r.op.Events("refresh_token.destroyed") != destroyed+1 {
		t.Error("deletion revoked no refresh token at the bank")
	}
	if res := r.srv.CLI("", "read", m+"/consent/ob/alice"); res.ExitCode != 2 {
		t.Errorf("deleted consent still reads: %d %s", res.ExitCode, res.Stdout)
	}

	// No code, state or token in consent reads, Vault's log or the audit log.
	reads := ""
	for _, id := range []string{"bob", "carol", "dave", "erin"} {
		b, _ := json.Marshal(r.cli(t, "read", m+"/consent/ob/"+id))
		reads += string(b)
	}
	audit, _ := os.ReadFile(r.audit)
	for _, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("a secret of %d characters cannot be scanned for", len(s))
		}
		for where, text := range map[string]string{"a consent read": reads, "Vault's log": r.srv.Log(), "the audit log": string(audit)} {
			if strings.Contains(text, s) {
				t.Errorf("a code, state or token appears in %s", where)
			}
		}
	}
}

// TestConsentSurvivesVaultRestart: a consent's tokens and a pending attempt
// are in Vault's storage, not the plugin's memory. After a restart (a new
// Vault and plugin process) the cached token is served without a bank
// request, a forced refresh still rotates, and an attempt begun before the
// restart completes after it.
func TestConsentSurvivesVaultRestart(t *testing.T) {
	r := newConsentRig(t, vaulttest.Options{Storage: "file"}, 600)
	m := r.mount
	r.configure(t)
	loc := follow(t, r.begin(t, "alice"), nil)
	r.cli(t, "write", m+"/consent/ob/alice/callback", "callback_url="+loc)
	before, _ := r.cli(t, "read", m+"/token/ob/alice")["access_token"].(string)
	seen.add(before)
	pending := r.begin(t, "bob")
	if err := r.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	after, _ := r.cli(t, "read", m+"/token/ob/alice")["access_token"].(string)
	if after != before || r.op.Events("refresh_token.consumed") != 0 {
		t.Errorf("after the restart: same token %v, bank refreshes %d", after == before, r.op.Events("refresh_token.consumed"))
	}
	forced, _ := r.cli(t, "write", "-f", m+"/token/ob/alice")["access_token"].(string)
	seen.add(forced)
	if forced == before || r.op.Events("refresh_token.consumed") != 1 {
		t.Errorf("forced refresh after the restart: new token %v, bank refreshes %d", forced != before, r.op.Events("refresh_token.consumed"))
	}
	loc = follow(t, pending, http.Header{"X-Test-User": {"bob"}})
	if got := r.cli(t, "write", m+"/consent/ob/bob/callback", "callback_url="+loc); got["state"] != "authorized" || got["sub"] != "bob" {
		t.Errorf("callback after the restart: %v", got)
	}
}
