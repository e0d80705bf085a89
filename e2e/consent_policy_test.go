//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/internal/vaulttest"
)

// userPolicy is docs/policies.md's per-user consent policy for the rig's
// config ob: each Vault entity reads the token of the consent named after
// it, and nothing else of the mount.
const userPolicy = `path "bankauth/token/ob/{{identity.entity.name}}" {
  capabilities = ["read"]
}
`

// consentAppPolicy is docs/policies.md's policy for the app that starts
// consents and hands Vault their callbacks, for the rig's config ob.
const consentAppPolicy = `path "bankauth/consent/ob/*" {
  capabilities = ["create", "update", "read", "delete"]
}
path "bankauth/consent/ob" {
  capabilities = ["list"]
}
`

// TestConsentPolicyPerUser proves ACL templating on a real Vault: users
// alice and bob of a userpass mount, each the alias of an entity of that
// name, under the per-user policy, read the token of their own consent and
// get 403 for the other's, for any consent read and for configs. The
// consents are started and called back under the app policy, which reads no
// token. A user whose entity Vault created itself (a generated name) gets
// nothing from the template.
func TestConsentPolicyPerUser(t *testing.T) {
	r := newConsentRig(t, vaulttest.Options{}, 600)
	m := r.mount
	r.configure(t)
	srv := r.srv
	dir := t.TempDir()
	for name, text := range map[string]string{"consent-user": userPolicy, "consent-app": consentAppPolicy} {
		path := filepath.Join(dir, name+".hcl")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		mustOut(t, srv, "policy", "write", name, path)
	}
	mustOut(t, srv, "auth", "enable", "userpass")
	out, err := srv.MustCLI("auth", "list", "-format=json")
	if err != nil {
		t.Fatal(err)
	}
	var auths map[string]struct {
		Accessor string `json:"accessor"`
	}
	if err := json.Unmarshal([]byte(out), &auths); err != nil || auths["userpass/"].Accessor == "" {
		t.Fatalf("auth list: %v %s", err, out)
	}
	accessor := auths["userpass/"].Accessor

	// The app starts each consent and completes it; the automated user
	// logs in at the bank as the consent's id.
	app := strings.TrimSpace(mustOut(t, srv, "token", "create", "-policy=consent-app", "-field=token"))
	users := map[string]string{}
	tokens := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		ent := r.cli(t, "write", "identity/entity", "name="+name)
		id, _ := ent["id"].(string)
		if id == "" {
			t.Fatalf("identity/entity answered %v", ent)
		}
		r.cli(t, "write", "identity/entity-alias", "name="+name, "canonical_id="+id, "mount_accessor="+accessor)
		mustOut(t, srv, "write", "auth/userpass/users/"+name, "password=pw-"+name+"-Xy9!", "token_policies=consent-user")
		users[name] = strings.TrimSpace(mustOut(t, srv, "write", "-field=token", "auth/userpass/login/"+name, "password=pw-"+name+"-Xy9!"))

		res := srv.CLI(app, "write", "-format=json", "-f", m+"/consent/ob/"+name)
		var begun struct {
			Data map[string]any `json:"data"`
		}
		if res.ExitCode != 0 || json.Unmarshal([]byte(res.Stdout), &begun) != nil {
			t.Fatalf("the app could not begin consent %s: %s", name, res.Stderr)
		}
		authURL, _ := begun.Data["authorization_url"].(string)
		loc := follow(t, authURL, http.Header{"X-Test-User": {name}})
		if res := srv.CLI(app, "write", m+"/consent/ob/"+name+"/callback", "callback_url="+loc); res.ExitCode != 0 {
			t.Fatalf("the app could not complete consent %s: %s", name, res.Stderr)
		}
		if st := r.cli(t, "read", m+"/consent/ob/"+name); st["state"] != "authorized" || st["sub"] != name {
			t.Fatalf("consent %s: %v", name, st)
		}
	}
	if res := srv.CLI(app, "list", m+"/consent/ob"); res.ExitCode != 0 {
		t.Errorf("the app cannot list consents: %s", res.Stderr)
	}
	if res := srv.CLI(app, "read", m+"/token/ob/alice"); !strings.Contains(res.Stderr, "Code: 403") {
		t.Errorf("the app read a consent token: exit %d %s", res.ExitCode, res.Stderr)
	}

	for name, other := range map[string]string{"alice": "bob", "bob": "alice"} {
		res := srv.CLI(users[name], "read", "-field=access_token", m+"/token/ob/"+name)
		if res.ExitCode != 0 {
			t.Fatalf("%s cannot read token/ob/%s: %s", name, name, res.Stderr)
		}
		tokens[name] = strings.TrimSpace(res.Stdout)
		seen.add(tokens[name])
		denied := [][]string{
			{"read", m + "/token/ob/" + other},
			{"write", "-f", m + "/token/ob/" + name},
			{"read", m + "/consent/ob/" + name},
			{"read", m + "/consent/ob/" + other},
			{"write", "-f", m + "/consent/ob/" + name},
			{"write", m + "/consent/ob/" + name + "/callback", "error=access_denied"},
			{"delete", m + "/consent/ob/" + other},
			{"list", m + "/consent/ob"},
			{"read", m + "/config/ob"},
			{"list", m + "/config"},
		}
		for _, args := range denied {
			if res := srv.CLI(users[name], args...); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Code: 403") {
				t.Errorf("%s ran vault %s: exit %d %s", name, strings.Join(args, " "), res.ExitCode, res.Stderr)
			}
		}
	}
	if tokens["alice"] == "" || tokens["alice"] == tokens["bob"] {
		t.Error("alice and bob were served the same token")
	}

	// A user whose entity Vault made at the first login has a generated
	// name (entity_<hex>), not the user's: the template does not give
	// them token/ob/<user>.
	mustOut(t, srv, "write", "auth/userpass/users/carol", "password=pw-carol-Xy9!", "token_policies=consent-user")
	carol := strings.TrimSpace(mustOut(t, srv, "write", "-field=token", "auth/userpass/login/carol", "password=pw-carol-Xy9!"))
	if res := srv.CLI(carol, "read", m+"/token/ob/carol"); !strings.Contains(res.Stderr, "Code: 403") {
		t.Errorf("carol, whose entity has a generated name, was not refused token/ob/carol: exit %d %s", res.ExitCode, res.Stderr)
	}
}

// mustOut runs the vault CLI as root and returns its output.
func mustOut(t *testing.T, srv *vaulttest.Server, args ...string) string {
	t.Helper()
	out, err := srv.MustCLI(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
