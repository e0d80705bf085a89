package bankauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/vault/sdk/logical"
)

// storedPrivate returns base64 and raw forms of every stored private key
// version of key name, to scan responses for.
func storedPrivate(t *testing.T, e *testEnv, name string) []string {
	t.Helper()
	k, err := readKey(context.Background(), e.storage, name)
	if err != nil || k == nil {
		t.Fatalf("read key %s: %v", name, err)
	}
	var out []string
	for _, v := range k.Versions {
		out = append(out, base64.StdEncoding.EncodeToString(v.Private)[:40], string(v.Private[10:40]))
	}
	return out
}

func assertNoPrivate(t *testing.T, e *testEnv, name string, what any) {
	t.Helper()
	s := stringify(what)
	for _, p := range storedPrivate(t, e, name) {
		if strings.Contains(s, p) {
			t.Fatalf("private key material in %s", s)
		}
	}
}

func errorText(resp *logical.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	if resp != nil && resp.IsError() {
		return resp.Error().Error()
	}
	return ""
}

func TestKeyLifecycle(t *testing.T) {
	e := newTestEnv(t)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	e.b.keys.now = func() time.Time { return now }

	created := e.mustOK(t, logical.CreateOperation, "key/ob", map[string]any{"type": "rsa-2048", "purpose": "request_signing"}).Data
	assertNoPrivate(t, e, "ob", created)
	got := e.mustOK(t, logical.ReadOperation, "key/ob", nil).Data
	assertNoPrivate(t, e, "ob", got)
	if got["type"] != "rsa-2048" || got["latest_version"] != 1 || got["min_version"] != 1 || got["public_jwks"] != false ||
		got["certificate"] != nil {
		t.Fatalf("read %v", got)
	}
	// public_key and jwk are the same key, and kid is its RFC 7638
	// thumbprint as go-jose computes it.
	block, _ := pem.Decode([]byte(got["public_key"].(string)))
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(stringify(got["jwk"])), &jwk); err != nil || !jwk.IsPublic() {
		t.Fatalf("jwk %v: %v", got["jwk"], err)
	}
	if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(jwk.Key) {
		t.Error("jwk and public_key differ")
	}
	tp, _ := jwk.Thumbprint(crypto.SHA256)
	if got["kid"] != base64.RawURLEncoding.EncodeToString(tp) || jwk.KeyID != got["kid"] {
		t.Errorf("kid %v, thumbprint %x", got["kid"], tp)
	}
	v1 := got["versions"].(map[string]any)["1"].(map[string]any)
	if v1["created_at"] != "2026-11-29T12:00:00Z" || v1["kid"] != got["kid"] || v1["public_key"] != got["public_key"] {
		t.Errorf("version 1 %v", v1)
	}

	now = now.Add(24 * time.Hour)
	rot := e.mustOK(t, logical.UpdateOperation, "key/ob/rotate", nil).Data
	if rot["latest_version"] != 2 || rot["kid"] == got["kid"] || rot["public_key"] == got["public_key"] {
		t.Fatalf("after rotate %v", rot)
	}
	if v2 := rot["versions"].(map[string]any)["2"].(map[string]any); v2["created_at"] != "2026-11-30T12:00:00Z" {
		t.Errorf("version 2 %v", v2)
	}
	upd := e.mustOK(t, logical.UpdateOperation, "key/ob", map[string]any{"min_version": 2, "public_jwks": true,
		"kid": "directory-kid"}).Data
	if upd["min_version"] != 2 || upd["public_jwks"] != true || upd["kid"] != "directory-kid" || upd["type"] != "rsa-2048" {
		t.Errorf("after update %v", upd)
	}
	e.mustOK(t, logical.CreateOperation, "key/dpop", map[string]any{"type": "ec-p256", "purpose": "dpop"})
	list := e.mustOK(t, logical.ListOperation, "key/", nil).Data["keys"].([]string)
	if strings.Join(list, ",") != "dpop,ob" {
		t.Errorf("list %v", list)
	}
	e.mustOK(t, logical.DeleteOperation, "key/dpop", nil)
	if resp, err := e.request(t, logical.ReadOperation, "key/dpop", nil); !isNotFound(resp, err) {
		t.Errorf("deleted key reads %v", resp.Data)
	}
}

func TestKeyWriteRefusesBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/a", map[string]any{"type": "ec-p256", "purpose": "request_signing"})
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(ec)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	pemLine := strings.Split(pemKey, "\n")[1]
	cases := []struct {
		op    logical.Operation
		path  string
		data  map[string]any
		field string
	}{
		{logical.CreateOperation, "key/b", map[string]any{}, "invalid type"},
		{logical.CreateOperation, "key/b", map[string]any{"type": "rsa-1024", "purpose": "tls"}, "invalid type"},
		{logical.CreateOperation, "key/b", map[string]any{"key": pemKey, "type": "ec-p256"}, "invalid type"},
		{logical.CreateOperation, "key/b", map[string]any{"key": strings.Replace(pemKey, "M", "X", 3)}, "invalid key"},
		{logical.CreateOperation, "key/b", map[string]any{"key": []any{pemKey}}, "invalid key"},
		{logical.CreateOperation, "key/b", map[string]any{"type": "ec-p256", "purpose": "tls", "min_version": 2}, "invalid min_version"},
		{logical.CreateOperation, "key/b", map[string]any{"type": "ec-p256", "purpose": "tls", "kid": "a b"}, "invalid kid"},
		{logical.UpdateOperation, "key/a", map[string]any{"key": pemKey}, "invalid key"},
		{logical.UpdateOperation, "key/a", map[string]any{"type": "rsa-2048"}, "invalid type"},
		{logical.UpdateOperation, "key/nope/rotate", nil, "invalid name"},
	}
	for _, c := range cases {
		resp, err := e.request(t, c.op, c.path, c.data)
		msg := errorText(resp, err)
		if err != nil || !strings.HasPrefix(msg, c.field) {
			t.Errorf("%s %s %v: got %q (err %v), want a 400 starting %q", c.op, c.path, c.data["type"], msg, err, c.field)
		}
		if strings.Contains(msg, pemLine) || strings.Contains(msg, "PRIVATE KEY") {
			t.Errorf("error quotes the key: %s", msg)
		}
	}
	if list := e.mustOK(t, logical.ListOperation, "key/", nil).Data["keys"].([]string); len(list) != 1 {
		t.Errorf("a refused write stored a key: %v", list)
	}

	// An import keeps the key a bank registered.
	got := e.mustOK(t, logical.CreateOperation, "key/imported", map[string]any{"key": pemKey, "purpose": "client_auth"}).Data
	assertNoPrivate(t, e, "imported", got)
	block, _ := pem.Decode([]byte(got["public_key"].(string)))
	pub, _ := x509.ParsePKIXPublicKey(block.Bytes)
	if got["type"] != "ec-p384" || got["imported"] != true || !ec.PublicKey.Equal(pub) {
		t.Errorf("import read %v", got)
	}
	if strings.Contains(stringify(got), pemLine) {
		t.Error("an imported key's PEM shows in its read")
	}
}

// Keys are stored under key/, which the backend seal-wraps.
func TestKeysAreSealWrapped(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/a", map[string]any{"type": "ec-p256", "purpose": "request_signing"})
	if se, _ := e.storage.Get(context.Background(), keyPrefix+"a"); se == nil {
		t.Fatal("key not stored under key/")
	}
	found := false
	for _, p := range e.b.PathsSpecial.SealWrapStorage {
		found = found || p == keyPrefix
	}
	if !found {
		t.Errorf("SealWrapStorage %v lacks %s", e.b.PathsSpecial.SealWrapStorage, keyPrefix)
	}
}
