package bankauth

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestTokenReadCachesAndLeases(t *testing.T) {
	e := newTestEnv(t)
	for _, p := range emulator.Providers {
		e.configure(t, p, p)
		first := e.mustOK(t, logical.ReadOperation, "token/"+p, nil)
		second := e.mustOK(t, logical.ReadOperation, "token/"+p, nil)
		tok := first.Data["access_token"].(string)
		if !e.emu.TokenValid(p, tok) || second.Data["access_token"] != tok {
			t.Errorf("%s: token not valid or not cached", p)
		}
		if n := e.emu.Stats(p).Logins; n != 1 {
			t.Errorf("%s: %d bank logins for two reads, want 1", p, n)
		}
		s := first.Secret
		if s == nil || s.Renewable || s.TTL < 58*time.Second || s.TTL > 60*time.Second {
			t.Errorf("%s: lease %+v, want non-renewable ~60s", p, s)
		}
		exp, err := time.Parse(time.RFC3339, first.Data["expires_at"].(string))
		if err != nil || !strings.HasSuffix(first.Data["expires_at"].(string), "Z") {
			t.Errorf("%s: expires_at %v", p, first.Data["expires_at"])
		}
		if in := first.Data["expires_in"].(int64); in < 58 || in > 60 || time.Until(exp) > 61*time.Second {
			t.Errorf("%s: expires_in %d", p, in)
		}
	}
}

func TestConcurrentColdReadsMakeOneBankRequest(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	e.emu.SetLatency(emulator.Rakbank, 200*time.Millisecond)
	var wg sync.WaitGroup
	tokens := make([]string, 100)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.request(t, logical.ReadOperation, "token/rak", nil)
			if err == nil && !resp.IsError() {
				tokens[i] = resp.Data["access_token"].(string)
			}
		}()
	}
	wg.Wait()
	for _, tok := range tokens {
		if tok == "" || tok != tokens[0] {
			t.Fatalf("readers got different or no tokens")
		}
	}
	if st := e.emu.Stats(emulator.Rakbank); st.Total != 1 {
		t.Fatalf("%d bank requests for 100 concurrent cold reads, want 1", st.Total)
	}
}

func TestStaleTokenIsReplacedByRefreshGrant(t *testing.T) {
	e := newTestEnv(t)
	e.emu.SetTTL(emulator.Etranzact, 5*time.Second) // stale after 4s
	e.configure(t, "etz", emulator.Etranzact)
	first := e.mustOK(t, logical.ReadOperation, "token/etz", nil).Data["access_token"]
	e.step(4100 * time.Millisecond)
	second := e.mustOK(t, logical.ReadOperation, "token/etz", nil).Data["access_token"]
	if first == second {
		t.Fatal("stale token served again")
	}
	if st := e.emu.Stats(emulator.Etranzact); st.Logins != 1 || st.Refreshes != 1 {
		t.Fatalf("stats %+v, want 1 login + 1 refresh", st)
	}
}

func TestForceRefresh(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "ac", emulator.AccelerationCloud)
	first := e.mustOK(t, logical.ReadOperation, "token/ac", nil).Data["access_token"]
	e.step(time.Millisecond)
	forced := e.mustOK(t, logical.UpdateOperation, "token/ac", nil)
	if forced.Data["access_token"] == first || forced.Secret == nil {
		t.Fatal("write did not force a new leased token")
	}
	if got := e.mustOK(t, logical.ReadOperation, "token/ac", nil).Data["access_token"]; got != forced.Data["access_token"] {
		t.Fatal("read after force does not return the forced token")
	}
	// A crowd forcing at once (all got a 401 from the bank) costs one request.
	e.emu.SetLatency(emulator.AccelerationCloud, 100*time.Millisecond)
	e.step(time.Millisecond)
	before := e.emu.Stats(emulator.AccelerationCloud).Total
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); e.request(t, logical.UpdateOperation, "token/ac", nil) }()
	}
	wg.Wait()
	if n := e.emu.Stats(emulator.AccelerationCloud).Total - before; n < 1 || n > 2 {
		t.Fatalf("%d bank requests for 20 simultaneous forced refreshes, want 1 (2 if one arrived late)", n)
	}
}

func TestConfigChangeDropsTokenAndDeleteRemovesBoth(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	first := e.mustOK(t, logical.ReadOperation, "token/rak", nil).Data
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"scope": "payments"})
	second := e.mustOK(t, logical.ReadOperation, "token/rak", nil).Data
	if second["access_token"] == first["access_token"] || second["scope"] != "payments" {
		t.Fatalf("token after scope change: %v", second["scope"])
	}
	e.mustOK(t, logical.DeleteOperation, "config/rak", nil)
	if se, _ := e.storage.Get(context.Background(), tokenPrefix+"rak"); se != nil {
		t.Fatal("delete left the stored token")
	}
	resp, err := e.request(t, logical.ReadOperation, "token/rak", nil)
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), `no config named "rak"`) {
		t.Fatalf("read after delete: %v %v", resp, err)
	}
}

func TestStoredTokenSurvivesANewBackend(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "etz", emulator.Etranzact)
	tok := e.mustOK(t, logical.ReadOperation, "token/etz", nil).Data["access_token"]
	// A new backend on the same storage is what a Vault restart or plugin reload gives.
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e.b = lb.(*backend)
	if got := e.mustOK(t, logical.ReadOperation, "token/etz", nil).Data["access_token"]; got != tok {
		t.Fatal("restarted backend fetched a new token")
	}
	if n := e.emu.Stats(emulator.Etranzact).Total; n != 1 {
		t.Fatalf("%d bank requests, want 1", n)
	}
}

func TestUpstreamFailureIs502WithoutSecrets(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	e.emu.FailNext(emulator.Rakbank, 1, emulator.Failure{Status: 403,
		Body: `{"status":"403","response_code":"RAK-AUTH-07","response_message":"Scope not allowed","description":"partner lacks scope"}`})
	_, err := e.request(t, logical.ReadOperation, "token/rak", nil)
	coded, ok := err.(logical.HTTPCodedError)
	if !ok || coded.Code() != 502 {
		t.Fatalf("error %v (%T), want a 502", err, err)
	}
	for _, w := range []string{"config rak: ", "rakbank", "HTTP 403", "RAK-AUTH-07", "Scope not allowed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	for _, s := range emulator.DefaultCredentials().Secrets() {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a secret")
		}
	}
}
