package bankauth

import (
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// countingSystemView counts what the backend asks Vault: for an external
// plugin each call is a gRPC round trip to Vault.
type countingSystemView struct {
	logical.StaticSystemView
	replicationState atomic.Int64
}

func (s *countingSystemView) ReplicationState() consts.ReplicationState {
	s.replicationState.Add(1)
	return s.StaticSystemView.ReplicationState()
}

func TestCachedReadAsksVaultNothing(t *testing.T) {
	sys := &countingSystemView{}
	conf := logical.TestBackendConfig()
	conf.System = sys
	conf.StorageView = &logical.InmemStorage{}
	allowLoopback(t, conf.StorageView)
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t)
	e.b, e.storage = lb.(*backend), conf.StorageView
	e.configure(t, "rak", emulator.Rakbank)
	first := e.mustOK(t, logical.ReadOperation, "token/rak", nil)
	before := sys.replicationState.Load()
	for i := 0; i < 10; i++ {
		if r := e.mustOK(t, logical.ReadOperation, "token/rak", nil); r.Data["access_token"] != first.Data["access_token"] {
			t.Fatal("cached read returned another token")
		}
	}
	if n := sys.replicationState.Load() - before; n != 0 {
		t.Errorf("10 cached reads asked Vault for the replication state %d times, want 0", n)
	}
	// A read with parameters goes through the framework, which warns about them.
	r := e.mustOK(t, logical.ReadOperation, "token/rak", map[string]any{"colour": "blue"})
	if r.Data["access_token"] != first.Data["access_token"] || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "colour") {
		t.Errorf("read with a parameter: token %v warnings %v", r.Data["access_token"], r.Warnings)
	}
}

// The fast path and the framework give the same answer, in both lease modes.
func TestFastPathAnswersLikeTheFramework(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "leased", emulator.Rakbank)
	data := emulator.ConfigData(emulator.Rakbank, e.url, emulator.DefaultCredentials())
	data["lease"] = false
	e.mustOK(t, logical.CreateOperation, "config/plain", data)
	for _, name := range []string{"leased", "plain"} {
		e.mustOK(t, logical.ReadOperation, "token/"+name, nil) // cache it
		req := &logical.Request{Operation: logical.ReadOperation, Path: "token/" + name, Storage: e.storage}
		fast := e.b.fastTokenRead(req)
		slow, err := e.b.Backend.HandleRequest(context.Background(), req)
		if fast == nil || err != nil || slow == nil {
			t.Fatalf("%s: fast %v, framework %v %v", name, fast, slow, err)
		}
		for _, k := range []string{"access_token", "token_type", "expires_at", "scope"} {
			if fast.Data[k] != slow.Data[k] {
				t.Errorf("%s: %s %v (fast) vs %v (framework)", name, k, fast.Data[k], slow.Data[k])
			}
		}
		if d := fast.Data["expires_in"].(int64) - slow.Data["expires_in"].(int64); d < -1 || d > 1 || len(fast.Data) != len(slow.Data) {
			t.Errorf("%s: data %v (fast) vs %v (framework)", name, fast.Data, slow.Data)
		}
		if (fast.Secret == nil) != (slow.Secret == nil) || (fast.Secret != nil &&
			(fast.Secret.InternalData["secret_type"] != slow.Secret.InternalData["secret_type"] || fast.Secret.Renewable || fast.Secret.TTL <= 0)) {
			t.Errorf("%s: lease %+v (fast) vs %+v (framework)", name, fast.Secret, slow.Secret)
		}
	}
	// Not for the fast path: unknown names, other operations, other paths.
	for _, req := range []*logical.Request{
		{Operation: logical.ReadOperation, Path: "token/nosuch"},
		{Operation: logical.UpdateOperation, Path: "token/leased"},
		{Operation: logical.ReadOperation, Path: "token/leased/x"},
		{Operation: logical.ReadOperation, Path: "config/leased"},
		{Operation: logical.ReadOperation, Path: "token/"},
	} {
		if resp := e.b.fastTokenRead(req); resp != nil {
			t.Errorf("fast path answered %s %s", req.Operation, req.Path)
		}
	}
}

func TestIsConfigNameMatchesTheFrameworkPattern(t *testing.T) {
	re := regexp.MustCompile("^" + framework.GenericNameRegex("name") + "$")
	cases := []string{"", "a", "ab", "a-b", "a.b", "a_b", "-a", "a-", ".a", "a.", "_", "a--b", "a..b", "a/b",
		"a b", "A9", "é", "a\x00", "token", "x.y-z_1", "-", ".", "a-.", "9"}
	for _, s := range cases {
		if got, want := isConfigName(s), re.MatchString(s); got != want {
			t.Errorf("isConfigName(%q) = %t, pattern says %t", s, got, want)
		}
	}
}
