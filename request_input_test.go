package bankauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/broker"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/jonboulle/clockwork"
	dto "github.com/prometheus/client_model/go"
)

// vaultWrite sends a write as Vault's core does: the existence check first
// (whose error Vault logs and puts in the audit log), then the request as a
// create or an update. It returns every text a caller or Vault's log could
// see.
func (e *testEnv) vaultWrite(t *testing.T, path string, data map[string]any) (*logical.Response, error, string) {
	t.Helper()
	req := &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data, Storage: e.storage}
	found, exists, err := e.b.HandleExistenceCheck(context.Background(), req)
	if err != nil {
		return nil, err, "existence check: " + err.Error()
	}
	if found && !exists {
		req.Operation = logical.CreateOperation
	}
	resp, err := e.b.HandleRequest(context.Background(), req)
	return resp, err, errorText(resp, err)
}

func TestExistenceCheckNeverQuotesAValue(t *testing.T) {
	e := newTestEnv(t)
	e.configure(t, "etz", emulator.Etranzact)
	e.mustOK(t, logical.CreateOperation, "key/k", map[string]any{"type": "ec-p256", "purpose": "request_signing"})
	for _, c := range []struct{ path, field, want string }{
		{"config/etz", "password", "invalid password: expected a string"},
		{"config/new", "client_secret", "invalid client_secret: expected a string"},
		{"config/new", "tls_client_key", "invalid tls_client_key: expected a string"},
		{"key/k2", "key", "invalid key: expected a string"},
		{"config/etz", "timeout", "invalid timeout: expected a duration: seconds, or a number with a unit such as 90s or 10m"},
		{"config/etz", "lease", "invalid lease: expected a boolean"},
	} {
		canary := "canary-" + c.field + "-7f3a9"
		for _, v := range []any{[]any{canary}, map[string]any{"x": canary}} {
			resp, err, text := e.vaultWrite(t, c.path, map[string]any{c.field: v})
			if err != nil || text != c.want {
				t.Errorf("%s %s=%v: %q (err %v), want %q", c.path, c.field, v, text, err, c.want)
			}
			if strings.Contains(text, canary) || strings.Contains(stringify(resp), canary) {
				t.Errorf("%s %s: the answer quotes the value", c.path, c.field)
			}
		}
	}
}

func TestObjectFieldsTakeJSONObjects(t *testing.T) {
	e := newTestEnv(t)
	data := emulator.ConfigData(emulator.Rakbank, e.url, emulator.DefaultCredentials())
	data["oauth_metadata"] = map[string]any{"account_id": "0188000049916"}
	if _, err, text := e.vaultWrite(t, "config/rak", data); err != nil || text != "" {
		t.Fatalf("oauth_metadata as an object: %q %v", text, err)
	}
	got := e.mustOK(t, logical.ReadOperation, "config/rak", nil).Data["oauth_metadata"]
	if stringify(got) != stringify(map[string]any{"account_id": "0188000049916"}) {
		t.Fatalf("oauth_metadata read back %v", got)
	}
	raw, err := os.ReadFile("docs/profiles/interswitch.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if _, err, text := e.vaultWrite(t, "profile/ex", map[string]any{"profile": doc}); err != nil || text != "" {
		t.Fatalf("profile as an object: %q %v", text, err)
	}
	e.mustOK(t, logical.ReadOperation, "profile/ex", nil)
}

func TestNamesFollowOneRule(t *testing.T) {
	e := newTestEnv(t)
	for _, path := range []string{"config/a..b", "key/a..b", "profile/a..b", "key/a..b/rotate", "key/a..b/csr",
		"sign/a..b", "dpop/a..b", "token/a..b", "config/" + strings.Repeat("n", maxNameLen+1)} {
		resp, err, text := e.vaultWrite(t, path, map[string]any{"type": "ec-p256", "provider": "etranzact"})
		if err != nil || !resp.IsError() || !strings.HasPrefix(text, "invalid name: a name is 1 to 128") {
			t.Errorf("write %s: %q err=%v, want a 400 naming the rule", path, text, err)
		}
	}
	for _, path := range []string{"config/a..b", "token/a..b", "status/a..b", "key/a..b", "jwks/a..b", "profile/a..b"} {
		for _, op := range []logical.Operation{logical.ReadOperation, logical.DeleteOperation} {
			resp, err := e.request(t, op, path, nil)
			if err != nil || !resp.IsError() || !strings.HasPrefix(errorText(resp, err), "invalid name:") {
				t.Errorf("%s %s: %v %v, want a 400 naming the rule", op, path, resp, err)
			}
		}
	}
	// A config with a name longer than the rule allows, stored by an
	// earlier release, is read, updated and deleted as before.
	long := strings.Repeat("l", maxNameLen+20)
	e.configure(t, "short", emulator.Etranzact)
	se, err := e.storage.Get(context.Background(), configPrefix+"short")
	if err != nil || se == nil {
		t.Fatal(err)
	}
	se.Key = configPrefix + long
	if err := e.storage.Put(context.Background(), se); err != nil {
		t.Fatal(err)
	}
	e.mustOK(t, logical.ReadOperation, "config/"+long, nil)
	if _, err, text := e.vaultWrite(t, "config/"+long, map[string]any{"timeout": "20s"}); err != nil || text != "" {
		t.Fatalf("update of a stored long name: %q %v", text, err)
	}
	e.mustOK(t, logical.ReadOperation, "token/"+long, nil)
	e.mustOK(t, logical.DeleteOperation, "config/"+long, nil)
}

// backendWithPath adds a path to a new backend whose handler does what misbehave
// says, as a handler with a defect would.
func backendWithPath(t *testing.T, misbehave framework.OperationFunc) (*backend, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	b := newBackend(clockwork.NewFakeClock())
	b.Backend.Paths = append(b.Backend.Paths, &framework.Path{
		Pattern: "defect/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":   {Type: framework.TypeNameString},
			"secret": {Type: framework.TypeString, DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
			"plain":  {Type: framework.TypeString},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: misbehave},
		},
	})
	b.routes = newRoutes(b.Backend.Paths)
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	b.storage = conf.StorageView
	b.broker = broker.New(broker.Options{Clock: b.clock, Logger: b.Logger(), Store: store{b, b.storage}, ReadOnly: func() bool { return false }})
	t.Cleanup(func() { b.Clean(context.Background()) })
	return b, &logs
}

func TestHandlerPanicIsRecovered(t *testing.T) {
	const canary = "canary-secret-in-a-panic"
	b, logs := backendWithPath(t, func(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		var m map[string]string
		m[d.Get("secret").(string)] = "boom" // a nil-map write: a runtime panic
		return nil, nil
	})
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "defect/x", Storage: b.storage,
		Data: map[string]any{"secret": canary}}
	resp, err := b.HandleRequest(context.Background(), req)
	if err != errInternal || resp != nil {
		t.Fatalf("panic answered %v %v, want errInternal", resp, err)
	}
	if !strings.Contains(logs.String(), "recovered from a panic") || !strings.Contains(logs.String(), "assignment to entry in nil map") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), canary) {
		t.Fatal("the panic's log line holds request data")
	}
	var m dto.Metric
	if err := b.metrics.panics.Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		got := m.GetCounter().GetValue()
		t.Fatalf("bankauth_handler_panics_total = %v, want 1", got)
	}
	// A panic whose value is the request's data is logged without it.
	b2, logs2 := backendWithPath(t, func(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		panic("bad value " + d.Get("secret").(string))
	})
	req.Storage = b2.storage
	if _, err := b2.HandleRequest(context.Background(), req); err != errInternal {
		t.Fatalf("panic(string) answered %v", err)
	}
	if strings.Contains(logs2.String(), canary) {
		t.Fatal("a panic value holding request data was logged")
	}
}

func TestAnswersNeverEchoASecret(t *testing.T) {
	const canary = "canary-\x01-secret"
	b, _ := backendWithPath(t, func(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		resp := logical.ErrorResponse("invalid secret: %q is not good, nor is %s", d.Get("secret"), d.Get("secret"))
		resp.AddWarning("saw " + d.Get("secret").(string))
		return resp, nil
	})
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "defect/x", Storage: b.storage,
		Data: map[string]any{"secret": canary}}
	resp, err := b.HandleRequest(context.Background(), req)
	if err != nil || !resp.IsError() {
		t.Fatalf("got %v %v", resp, err)
	}
	text := stringify(resp)
	if strings.Contains(text, "canary-") || !strings.Contains(resp.Error().Error(), "[redacted]") {
		t.Fatalf("answer echoes the caller's secret: %s", text)
	}

	// On config/, a field the schema does not declare may be a profile's
	// secret: it is redacted too. A coded error keeps its status.
	p, _ := b.routes.match("config/x")
	_, err = redactEchoes(p, map[string]any{"api_key": "profile-field-secret"}, nil,
		logical.CodedError(http.StatusBadGateway, "bank said profile-field-secret"))
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) || coded.Code() != http.StatusBadGateway || err.Error() != "bank said [redacted]" {
		t.Fatalf("coded error after redaction: %v", err)
	}
}

// Elsewhere an undeclared field is dropped unread by the framework: its
// value is not taken for a secret, so a 403 that happens to contain it
// stays a 403 as it was (the fuzzer found metrics/public?x=true answered
// 500 with its message redacted).
func TestUndeclaredFieldsOutsideConfigAreNotRedacted(t *testing.T) {
	b, _ := backendWithPath(t, func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
		return nil, logical.CodedError(http.StatusForbidden, "needs unauthenticated_metrics=true")
	})
	req := &logical.Request{Operation: logical.UpdateOperation, Path: "defect/x", Storage: b.storage,
		Data: map[string]any{"x": "true"}}
	_, err := b.HandleRequest(context.Background(), req)
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) || coded.Code() != http.StatusForbidden || err.Error() != "needs unauthenticated_metrics=true" {
		t.Fatalf("got %v, want the handler's 403 unchanged", err)
	}
}
