package bankauth

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
)

// A mount with default settings refuses to send credentials to a loopback
// service (here: the emulator, standing in for a local JSON service a
// config writer wants to read through the token path); allow_loopback
// turns that on for existing configs at once, and allowed_hosts narrows it.
func TestSettingsEgressPolicy(t *testing.T) {
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	emu := emulator.New(emulator.Options{})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	e := &testEnv{b: lb.(*backend), storage: conf.StorageView, emu: emu, url: srv.URL}

	got := e.mustOK(t, logical.ReadOperation, "settings", nil).Data
	if got["allow_loopback"] != false || len(got["allowed_hosts"].([]string)) != 0 {
		t.Fatalf("default settings %v", got)
	}
	e.configure(t, "etz", emulator.Etranzact)
	if msg := failure(e.request(t, logical.ReadOperation, "token/etz", nil)); !strings.Contains(msg, "egress policy refuses 127.0.0.1: plain http") {
		t.Fatalf("token read to loopback with default settings: %q", msg)
	}
	if n := emu.Stats(emulator.Etranzact).Total; n != 0 {
		t.Fatalf("the loopback service got %d requests", n)
	}

	e.mustOK(t, logical.UpdateOperation, "settings", map[string]any{"allow_loopback": true})
	e.mustOK(t, logical.ReadOperation, "token/etz", nil)

	e.mustOK(t, logical.UpdateOperation, "settings", map[string]any{"allowed_hosts": "api.bank.example,203.0.113.0/24"})
	got = e.mustOK(t, logical.ReadOperation, "settings", nil).Data
	if got["allow_loopback"] != true || strings.Join(got["allowed_hosts"].([]string), ",") != "api.bank.example,203.0.113.0/24" {
		t.Fatalf("settings %v", got)
	}
	// A refresh (a new fetch, not the cached token) follows the new list.
	if msg := failure(e.request(t, logical.UpdateOperation, "token/etz", nil)); !strings.Contains(msg, "not in allowed_hosts") {
		t.Fatalf("refresh after allowed_hosts: %q", msg)
	}

	resp, err := e.request(t, logical.UpdateOperation, "settings", map[string]any{"allowed_hosts": "10.0.0.0/33"})
	if err != nil || !resp.IsError() || !strings.Contains(resp.Error().Error(), "invalid allowed_hosts") {
		t.Fatalf("bad allowed_hosts: %v %v", resp, err)
	}
	if got := e.mustOK(t, logical.ReadOperation, "settings", nil).Data["allowed_hosts"]; len(got.([]string)) != 2 {
		t.Fatalf("a refused write changed allowed_hosts: %v", got)
	}
}

// failure is the text of a failed request: its error response or error.
func failure(resp *logical.Response, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case resp != nil && resp.IsError():
		return resp.Error().Error()
	}
	return ""
}
