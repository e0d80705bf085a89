package bankauth

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/vault/sdk/logical"
)

// An app that may only sign (update on sign/<key>) asks sign/ for a client
// assertion, a DPoP proof and the like: each is a 400 naming the field and
// the rule, never quoting what the app sent. Before issue 18 each was
// signed, and re-attached it was a JWT go-jose verifies.
func TestSignRefusesTokens(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/sig", map[string]any{"type": "rsa-2048", "purpose": "client_auth,request_signing"})
	e.mustOK(t, logical.CreateOperation, "key/dpop", map[string]any{"type": "ec-p256", "purpose": "dpop,request_signing"})
	jwk := e.mustOK(t, logical.ReadOperation, "key/dpop", nil).Data["jwk"]
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	assertion := `{"iss":"tpp-evil","sub":"tpp-evil","aud":"https://as.evil.example/token","exp":4102444800,"jti":"evil-1"}`
	dpop := `{"jti":"evil-2","htm":"POST","htu":"https://rs.evil.example/pay","iat":1764417600,"ath":"evil-ath"}`
	for _, c := range []struct {
		key, want string
		data      map[string]any
	}{
		{"sig", "invalid payload: ", map[string]any{"b64": true, "payload": enc(assertion), "header": `{"typ":"JOSE"}`}},
		{"sig", "invalid payload: ", map[string]any{"payload": enc(assertion)}}, // b64=false, re-attached base64url
		{"sig", "invalid payload: ", map[string]any{"payload": enc(`{"Data":{},"\u0069SS":"tpp-evil"}`)}},
		{"sig", "invalid header: ", map[string]any{"b64": true, "payload": enc(assertion), "header": `{"typ":"client-authentication+jwt"}`}},
		{"sig", "invalid header: ", map[string]any{"b64": true, "payload": enc(`{}`), "header": `{"\u0074yp":"evil+JWT"}`}},
		{"sig", "invalid header: ", map[string]any{"b64": true, "payload": enc(`{}`), "header": map[string]any{"Typ": "evil+jwt"}}},
		{"dpop", "invalid header: ", map[string]any{"b64": true, "payload": enc(dpop), "header": map[string]any{"typ": "dpop+jwt", "jwk": jwk}}},
		{"dpop", "invalid header: ", map[string]any{"b64": true, "payload": enc(`{"x":1}`), "header": map[string]any{"jwk": jwk}}},
		{"dpop", "invalid payload: ", map[string]any{"b64": true, "payload": enc(dpop)}},
		{"sig", "invalid crit: ", map[string]any{"payload": enc(`{}`), "header": `{"typ":"JOSE","cty":"json"}`, "crit": "typ,cty"}},
		{"sig", "invalid crit: ", map[string]any{"payload": enc(`{}`), "crit": "evil-crit-name"}},
	} {
		c.data["format"] = "jws_detached"
		req := &logical.Request{Operation: logical.UpdateOperation, Path: "sign/" + c.key, Data: c.data, Storage: e.storage}
		resp, err := e.b.HandleRequest(t.Context(), req)
		msg := errorText(resp, err)
		if code, _ := logical.RespondErrorCommon(req, resp, err); code != http.StatusBadRequest || !strings.HasPrefix(msg, c.want) {
			t.Errorf("%v: %d %q, want 400 %q...", c.data, code, msg, c.want)
			if resp != nil && resp.Data["signature"] != nil {
				t.Errorf("signed: %s", reattached(t, e, c.key, resp.Data["signature"].(string), c.data))
			}
		}
		for _, v := range []string{"evil", "dpop+jwt", "client-authentication"} {
			if strings.Contains(msg, v) {
				t.Errorf("%v: the error quotes the caller's value: %q", c.data, msg)
			}
		}
	}
}

// Duplicate members in header are harmless: the header is parsed, checked
// and encoded again, so what is signed is what was checked.
func TestSignHeaderIsReencoded(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(t, logical.CreateOperation, "key/sig", map[string]any{"type": "ec-p256", "purpose": "request_signing"})
	got := e.mustOK(t, logical.UpdateOperation, "sign/sig", map[string]any{"format": "jws_detached",
		"payload": base64.StdEncoding.EncodeToString([]byte(`{}`)), "header": `{"typ":"JWT","typ":"JOSE"}`}).Data
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(got["signature"].(string), ".")[0])
	if strings.Count(string(hdr), `"typ"`) != 1 || !strings.Contains(string(hdr), `"typ":"JOSE"`) {
		t.Errorf("signed header %s", hdr)
	}
}

// reattached puts the payload into a detached JWS and says what go-jose
// makes of it as a JWT.
func reattached(t *testing.T, e *testEnv, key, sig string, data map[string]any) string {
	t.Helper()
	payload, _ := base64.StdEncoding.DecodeString(data["payload"].(string))
	p := strings.Split(sig, ".")
	tok, err := jwt.ParseSigned(p[0]+"."+base64.RawURLEncoding.EncodeToString(payload)+"."+p[2],
		[]jose.SignatureAlgorithm{jose.PS256, jose.ES256})
	if err != nil {
		return "not a JWT to go-jose: " + err.Error()
	}
	var claims map[string]any
	if err := tok.Claims(publicKeyOf(t, e, key), &claims); err != nil {
		return "go-jose does not verify it: " + err.Error()
	}
	return stringify(map[string]any{"header": tok.Headers[0].ExtraHeaders, "claims": claims}) + ", verified by go-jose"
}
