package bankauth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// A bank that echoes the Basic credentials it got gets neither encoding of
// them into the read's error or status/<name> (bank TestEchoedSecretsAreScrubbed
// covers every form; this is the path through the backend).
func TestEchoedBasicCredentialsStayOutOfReadsAndStatus(t *testing.T) {
	e := newTestEnv(t)
	bank := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "got " + r.Header.Get("Authorization")})
	}))
	t.Cleanup(bank.Close)
	const secret = "s3cret+/value="
	for _, enc := range []string{"rfc6749", "raw"} {
		e.mustOK(t, logical.CreateOperation, "config/o-"+enc, map[string]any{"provider": "oauth2", "token_url": bank.URL + "/token",
			"client_id": "client-1", "client_secret": secret, "basic_encoding": enc})
		text := failure(e.request(t, logical.ReadOperation, "token/o-"+enc, nil))
		st := e.mustOK(t, logical.ReadOperation, "status/o-"+enc, nil).Data
		for _, cred := range []string{"client-1:" + secret, "client-1:" + url.QueryEscape(secret)} {
			b64 := base64.StdEncoding.EncodeToString([]byte(cred))
			for where, s := range map[string]string{"read": text, "status": stringify(st)} {
				if strings.Contains(s, b64) || strings.Contains(s, strings.TrimRight(b64, "=")) {
					t.Errorf("%s: %s shows the Basic credentials: %s", enc, where, s)
				}
			}
		}
		if !strings.Contains(text, "invalid_client") || !strings.Contains(text, "[redacted]") {
			t.Errorf("%s: read error %q, want the bank's code and the echo redacted", enc, text)
		}
	}
}
