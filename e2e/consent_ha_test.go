//go:build e2e

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/oidcop"
	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// nodeCLI runs the vault CLI as root against one node with -format=json and
// returns the answer's data.
func nodeCLI(t *testing.T, node *vaulttest.Server, args ...string) map[string]any {
	t.Helper()
	args = append([]string{args[0], "-format=json"}, args[1:]...)
	out, err := node.MustCLI(args...)
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
		t.Fatalf("vault %v through %s: %v\n%s", args, node.Addr, err, out)
	}
	return sec.Data
}

// consentTokenVia reads <mount>/token/ob/<id> through one node.
func consentTokenVia(t *testing.T, node *vaulttest.Server, mount, id string) string {
	t.Helper()
	sec, err := node.Client.Logical().Read(mount + "/token/ob/" + id)
	if err != nil || sec == nil {
		t.Fatalf("read %s/token/ob/%s through %s: %v", mount, id, node.Addr, err)
	}
	tok, _ := sec.Data["access_token"].(string)
	if tok == "" {
		t.Fatalf("read %s/token/ob/%s through %s: no access_token", mount, id, node.Addr)
	}
	seen.add(tok)
	return tok
}

// TestConsentHA runs a consent on a 3-node Vault cluster with integrated
// (raft) storage, oidc-provider as the bank. In Vault OSS only the active
// node runs the plugin and standbys forward every request to it, so:
//
//   - a consent begun through one standby and called back through the other
//     succeeds (both requests run on the active node);
//   - token reads through every node answer the one stored token, with no
//     refresh at the bank;
//   - after the active node is stopped, the new active node serves the
//     same consent and token from storage, with no bank request, and a
//     forced refresh through a standby costs exactly one refresh at the
//     bank, whose token every node then serves.
func TestConsentHA(t *testing.T) {
	began := time.Now()
	c, err := vaulttest.StartCluster(3, vaulttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3-node raft cluster ready in %s", time.Since(began).Round(time.Second))
	var handed []string
	defer func() { closeCluster(t, c, handed) }()
	active, err := c.WaitActive()
	if err != nil {
		t.Fatal(err)
	}
	if err := active.RegisterPlugin("bankauth"); err != nil {
		t.Fatal(err)
	}
	const m = "bankauth"
	if err := active.Mount("bankauth", m); err != nil {
		t.Fatal(err)
	}
	nodeCLI(t, active, "write", m+"/key/obsig", "type=ec-p256", "purpose=client_auth", "public_jwks=true")
	nodeCLI(t, active, "write", m+"/key/obdpop", "type=ec-p256", "purpose=dpop")
	resp, err := http.Get(active.Addr + "/v1/" + m + "/jwks/obsig")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	op, err := oidcop.Start(oidcop.Options{FAPI: "2.0", DPoPNonce: true, AccessTokenTTL: 600, Clients: []oidcop.Client{{
		ClientID: consentClient, RedirectURIs: []string{consentRedirect}, TokenEndpointAuthMethod: "private_key_jwt",
		TokenEndpointAuthSigningAlg: "ES256", JWKS: jwks, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, DPoPBoundAccessTokens: true, IDTokenSignedResponseAlg: "ES256",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(op.Log())
		}
		op.Close()
	}()
	nodeCLI(t, active, "write", m+"/key/obsig", "allowed_endpoints="+op.Issuer+"/", "allowed_audiences="+op.Issuer)
	standbys := c.Standbys(active)
	// The config is written through a standby too: forwarded like the rest.
	nodeCLI(t, standbys[0], "write", m+"/config/ob", "provider=oauth2", "grant_type=authorization_code", "issuer="+op.Issuer,
		"client_id="+consentClient, "auth_method=private_key_jwt", "signing_key=obsig", "dpop_key=obdpop",
		"redirect_uris="+consentRedirect, "scope=openid accounts offline_access", "fapi=2.0")

	// Begun through one standby, called back through the other.
	begun := nodeCLI(t, standbys[0], "write", "-f", m+"/consent/ob/alice")
	authURL, _ := begun["authorization_url"].(string)
	if begun["state"] != "pending" || !strings.HasPrefix(authURL, op.Issuer+"/") {
		t.Fatalf("consent write through a standby answered %v", begun)
	}
	loc := follow(t, authURL, nil)
	if cb := nodeCLI(t, standbys[1], "write", m+"/consent/ob/alice/callback", "callback_url="+loc); cb["state"] != "authorized" || cb["sub"] != "alice" {
		t.Fatalf("callback through the other standby answered %v", cb)
	}
	if n := op.Events("authorization_code.consumed"); n != 1 {
		t.Errorf("the bank redeemed %d codes, want 1", n)
	}

	// Every node serves the one stored token.
	first := consentTokenVia(t, active, m, "alice")
	handed = append(handed, first)
	for _, node := range standbys {
		if tok := consentTokenVia(t, node, m, "alice"); tok != first {
			handed = append(handed, tok)
			t.Errorf("standby %s served another token", node.Addr)
		}
	}
	if n := op.Events("refresh_token.consumed"); n != 0 {
		t.Errorf("reads of a fresh token cost %d refreshes", n)
	}

	// Failover: stop the active node.
	active.Stop()
	next, err := c.WaitActive()
	if err != nil {
		t.Fatal(err)
	}
	if next == active {
		t.Fatal("the stopped node is still named active")
	}
	t.Logf("new active node %s", next.Addr)
	if st := nodeCLI(t, next, "read", m+"/consent/ob/alice"); st["state"] != "authorized" || st["sub"] != "alice" {
		t.Errorf("after failover the consent reads %v", st)
	}
	for _, node := range c.Running() {
		if tok := consentTokenVia(t, node, m, "alice"); tok != first {
			handed = append(handed, tok)
			t.Errorf("after failover node %s served another token", node.Addr)
		}
	}
	if n := op.Events("refresh_token.consumed"); n != 0 {
		t.Errorf("after failover reads of a fresh token cost %d refreshes", n)
	}

	// A forced refresh after failover, through a standby: one refresh at
	// the bank, and every node serves its token.
	standby := c.Standbys(next)[0]
	forced, _ := nodeCLI(t, standby, "write", "-f", m+"/token/ob/alice")["access_token"].(string)
	seen.add(forced)
	handed = append(handed, forced)
	if forced == "" || forced == first {
		t.Errorf("forced refresh after failover: new token %v", forced != first)
	}
	if n := op.Events("refresh_token.consumed"); n != 1 {
		t.Errorf("a forced refresh after failover cost %d refreshes at the bank, want 1", n)
	}
	for _, node := range c.Running() {
		if tok := consentTokenVia(t, node, m, "alice"); tok != forced {
			handed = append(handed, tok)
			t.Errorf("node %s did not serve the refreshed token", node.Addr)
		}
	}
	if n := op.Events("refresh_token.consumed"); n != 1 {
		t.Errorf("reads of the refreshed token cost %d more refreshes", n-1)
	}
	// A new attempt through a standby after failover, and the consent's
	// deletion (revocation at the bank) through the other.
	loc = follow(t, nodeCLI(t, standby, "write", "-f", m+"/consent/ob/bob")["authorization_url"].(string), http.Header{"X-Test-User": {"bob"}})
	if cb := nodeCLI(t, next, "write", m+"/consent/ob/bob/callback", "callback_url="+loc); cb["state"] != "authorized" {
		t.Errorf("a consent after failover: %v", cb)
	}
	destroyed := op.Events("refresh_token.destroyed")
	nodeCLI(t, standby, "delete", m+"/consent/ob/alice")
	if op.Events("refresh_token.destroyed") != destroyed+1 {
		t.Error("a delete through a standby revoked no refresh token at the bank")
	}
}
