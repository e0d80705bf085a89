package bankauth

import (
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestConfigReadShowsNoSecret(t *testing.T) {
	e := newTestEnv(t)
	for _, p := range emulator.Providers {
		e.configure(t, p, p)
		resp := e.mustOK(t, logical.ReadOperation, "config/"+p, nil)
		if resp.Data["provider"] != p {
			t.Errorf("%s: provider %v", p, resp.Data["provider"])
		}
		text := strings.ToLower(strings.Join(strings.Fields(strings.ReplaceAll(
			strings.ReplaceAll(stringify(resp.Data), "\n", " "), "\t", " ")), " "))
		for _, s := range emulator.DefaultCredentials().Secrets() {
			if strings.Contains(text, strings.ToLower(s)) {
				t.Errorf("%s: config read shows a secret: %v", p, resp.Data)
			}
		}
	}
	resp := e.mustOK(t, logical.ReadOperation, "config/etranzact", nil)
	if resp.Data["password_set"] != true || resp.Data["username"] != emulator.DefaultCredentials().Username {
		t.Errorf("etranzact read %v", resp.Data)
	}
	resp = e.mustOK(t, logical.ReadOperation, "config/isbank", nil)
	if resp.Data["scope"] != "read:accounts all:remittance all:eft" || resp.Data["service_account_secret_set"] != true {
		t.Errorf("isbank read %v", resp.Data)
	}
	list := e.mustOK(t, logical.ListOperation, "config/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != 4 || keys[0] != "accelerationcloud" {
		t.Errorf("list %v", keys)
	}
}

func TestConfigBadInputIs400NamingTheField(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	before := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data

	cases := []struct {
		name  string
		path  string
		op    logical.Operation
		data  map[string]any
		field string
	}{
		{"unknown provider", "config/new", logical.CreateOperation, map[string]any{"provider": "hsbc"}, "provider"},
		{"no provider", "config/new", logical.CreateOperation, map[string]any{"client_id": "x"}, "provider"},
		{"missing field", "config/new", logical.CreateOperation, map[string]any{"provider": "etranzact", "username": "u"}, "password"},
		{"foreign field", "config/rak", logical.UpdateOperation, map[string]any{"username": "u"}, "username"},
		{"unknown field", "config/rak", logical.UpdateOperation, map[string]any{"colour": "blue"}, "colour"},
		{"metadata not json", "config/rak", logical.UpdateOperation, map[string]any{"oauth_metadata": "{account_id:1"}, "oauth_metadata"},
		{"metadata not object", "config/rak", logical.UpdateOperation, map[string]any{"oauth_metadata": "[1,2]"}, "oauth_metadata"},
		{"plain http", "config/rak", logical.UpdateOperation, map[string]any{"base_url": "http://bank.example"}, "base_url"},
		{"bad pem", "config/rak", logical.UpdateOperation, map[string]any{"ca_cert": "not a pem"}, "ca_cert"},
		{"timeout type", "config/rak", logical.UpdateOperation, map[string]any{"timeout": "soon"}, "timeout"},
		{"unset required", "config/rak", logical.UpdateOperation, map[string]any{"scope": ""}, "scope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.request(t, tc.op, tc.path, tc.data)
			if err != nil || resp == nil || !resp.IsError() {
				t.Fatalf("want a 400, got err=%v resp=%v", err, resp)
			}
			if msg := resp.Error().Error(); !strings.Contains(msg, tc.field) {
				t.Errorf("error %q does not name %s", msg, tc.field)
			}
		})
	}
	// Nothing was half-written.
	after := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data
	if stringify(before) != stringify(after) {
		t.Errorf("config changed by rejected writes:\n%v\n%v", before, after)
	}
	if resp, err := e.request(t, logical.ReadOperation, "config/new", nil); !isNotFound(resp, err) {
		t.Errorf("rejected create left a config: %v", resp.Data)
	}
}

func TestConfigUpdateMergesAndMetadataAcceptsObject(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "rak", emulator.Rakbank)
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"oauth_metadata": map[string]any{"account_id": "0188000049916"}})
	got := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data
	if got["scope"] != "accounts" || got["client_secret_set"] != true {
		t.Errorf("update lost fields: %v", got)
	}
	if md, _ := got["oauth_metadata"].(map[string]any); md["account_id"] != "0188000049916" {
		t.Errorf("oauth_metadata %v", got["oauth_metadata"])
	}
	e.mustOK(t, logical.UpdateOperation, "config/rak", map[string]any{"oauth_metadata": `{"emirates_id":"500000000006190"}`})
	got = e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data
	if md, _ := got["oauth_metadata"].(map[string]any); md["emirates_id"] != "500000000006190" || len(md) != 1 {
		t.Errorf("oauth_metadata from JSON string %v", got["oauth_metadata"])
	}
}
