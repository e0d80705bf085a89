package bank_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// answering is a bank that answers every request with status and body.
func answering(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A bank message that echoes a secret across the point where long messages
// are cut must not show the secret's first part.
func TestLongBankMessageDoesNotShowPartOfASecret(t *testing.T) {
	secret := emulator.DefaultCredentials().ClientSecret
	msg := strings.Repeat("x", 290) + " " + secret + " " + strings.Repeat("y", 50)
	url := answering(t, http.StatusUnauthorized, `{"status":"401","response_code":"RAK-1","response_message":"`+msg+`"}`)
	_, err := fetch(t, configFor(t, emulator.Rakbank, url), nil)
	if err == nil {
		t.Fatal("fetch succeeded")
	}
	if strings.Contains(err.Error(), secret[:8]) {
		t.Fatalf("error shows the start of the client secret: %v", err)
	}
	if !strings.Contains(err.Error(), "RAK-1") {
		t.Fatalf("error lost the bank's code: %v", err)
	}
}

// İşbank's code answer carries the authorization code in a field named
// "code", which is also a field banks name their error code in: a code
// answer that is not a success must not show the code.
func TestIsbankCodeIsNotShownAsTheBankErrorCode(t *testing.T) {
	const authCode = "AUTHCODE-not-for-errors-1234"
	url := answering(t, http.StatusCreated, `{"code":"`+authCode+`"}`)
	_, err := fetch(t, configFor(t, emulator.Isbank, url), nil)
	if err == nil {
		t.Fatal("fetch succeeded")
	}
	if strings.Contains(err.Error(), authCode) {
		t.Fatalf("error shows the authorization code: %v", err)
	}
}

// A bank that echoes the refresh token it was sent must not have it shown.
func TestRefreshTokenEchoedByTheBankIsNotShown(t *testing.T) {
	const rt = "refresh-token-echoed-5678"
	url := answering(t, http.StatusInternalServerError, `{"error":"server_error","error_description":"cannot refresh `+rt+`"}`)
	prev := &bank.Token{AccessToken: "old-access-token-9012", RefreshToken: rt}
	_, err := fetch(t, configFor(t, emulator.Etranzact, url), prev)
	if err == nil {
		t.Fatal("fetch succeeded")
	}
	if strings.Contains(err.Error(), rt) {
		t.Fatalf("error shows the refresh token: %v", err)
	}
}
