package bankauth

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestJWKSIsPublishedOnlyWhenAsked(t *testing.T) {
	e := newTestEnv(t)
	if !slices.Contains(e.b.PathsSpecial.Unauthenticated, "jwks/*") {
		t.Fatalf("jwks/* is not unauthenticated: %v", e.b.PathsSpecial.Unauthenticated)
	}
	e.mustOK(t, logical.CreateOperation, "key/ob", map[string]any{"type": "ec-p256", "purpose": "client_auth"})
	for _, path := range []string{"jwks/ob", "jwks/missing"} {
		if resp, err := e.request(t, logical.ReadOperation, path, nil); !isNotFound(resp, err) {
			t.Errorf("%s answers %v %v; want 404", path, resp, err)
		}
	}
	e.mustOK(t, logical.UpdateOperation, "key/ob", map[string]any{"public_jwks": true})
	e.mustOK(t, logical.UpdateOperation, "key/ob/rotate", nil)
	set := readJWKS(t, e, "ob")
	key := e.mustOK(t, logical.ReadOperation, "key/ob", nil).Data
	versions := key["versions"].(map[string]any)
	if len(set.Keys) != 2 || set.Keys[0].KeyID != key["kid"] ||
		set.Keys[1].KeyID != versions["1"].(map[string]any)["kid"] {
		t.Fatalf("JWKS after rotation: %+v", set.Keys)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() || k.Use != "sig" || k.Algorithm != "ES256" {
			t.Errorf("JWK %+v", k)
		}
	}
	assertNoPrivate(t, e, "ob", set)
	// Raising min_version takes version 1 out of the set.
	e.mustOK(t, logical.UpdateOperation, "key/ob", map[string]any{"min_version": 2})
	if set := readJWKS(t, e, "ob"); len(set.Keys) != 1 || set.Keys[0].KeyID != key["kid"] {
		t.Errorf("after min_version=2: %+v", set.Keys)
	}
	e.mustOK(t, logical.UpdateOperation, "key/ob", map[string]any{"public_jwks": false})
	if resp, err := e.request(t, logical.ReadOperation, "jwks/ob", nil); !isNotFound(resp, err) {
		t.Error("public_jwks=false still publishes")
	}
}

// readJWKS reads jwks/<name> and checks it is a raw application/json body
// go-jose reads as a JWK Set.
func readJWKS(t *testing.T, e *testEnv, name string) jose.JSONWebKeySet {
	t.Helper()
	resp := e.mustOK(t, logical.ReadOperation, "jwks/"+name, nil)
	if resp.Data[logical.HTTPContentType] != "application/json" || resp.Data[logical.HTTPStatusCode] != http.StatusOK {
		t.Fatalf("jwks response %v", resp.Data)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(resp.Data[logical.HTTPRawBody].([]byte), &set); err != nil {
		t.Fatalf("go-jose cannot read the JWK Set: %v", err)
	}
	return set
}
