// Package fakebank holds tiny stand-ins for banks that bankauth has no
// built-in provider for, used to test custom profiles end to end. They
// follow the bank's public documentation, nothing more.
package fakebank

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// InterswitchTokenPath is Interswitch Passport's token endpoint.
const InterswitchTokenPath = "/passport/oauth/token"

// Interswitch is Interswitch Passport's client credentials endpoint: POST,
// Basic auth with the raw client id and secret (Interswitch's own sample
// base64-encodes "id:secret" as is), form body grant_type=client_credentials.
type Interswitch struct {
	ClientID, Secret string
	TTL              time.Duration

	mu     sync.Mutex
	issued map[string]time.Time
	calls  int
}

// NewInterswitch accepts id and secret and issues tokens for ttl.
func NewInterswitch(id, secret string, ttl time.Duration) *Interswitch {
	return &Interswitch{ClientID: id, Secret: secret, TTL: ttl, issued: map[string]time.Time{}}
}

// Calls counts token requests.
func (b *Interswitch) Calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

// Valid reports whether token was issued here and has not expired.
func (b *Interswitch) Valid(token string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	exp, ok := b.issued[token]
	return ok && time.Now().Before(exp)
}

func (b *Interswitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fail := func(status int, code, desc string) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	id, secret, ok := r.BasicAuth()
	switch {
	case r.URL.Path != InterswitchTokenPath:
		fail(http.StatusNotFound, "not_found", "no such endpoint")
	case r.Method != http.MethodPost:
		fail(http.StatusMethodNotAllowed, "invalid_request", "use POST")
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		fail(http.StatusBadRequest, "invalid_request", "form body expected")
	case !ok || id != b.ClientID || secret != b.Secret:
		fail(http.StatusUnauthorized, "invalid_client", "Bad client credentials")
	case r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials":
		fail(http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type")
	default:
		buf := make([]byte, 24)
		rand.Read(buf)
		tok := "isw-" + hex.EncodeToString(buf)
		b.mu.Lock()
		b.issued[tok] = time.Now().Add(b.TTL)
		b.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": tok, "token_type": "bearer", "expires_in": int(b.TTL / time.Second),
			"scope": r.PostForm.Get("scope"), "merchant_code": "MX1234", "requestor_id": "00000000001",
			"client_name": "bankauth test", "jti": hex.EncodeToString(buf[:8]),
		})
	}
}
