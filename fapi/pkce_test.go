package fapi_test

import (
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/fapi"
)

func TestPKCE(t *testing.T) {
	// RFC 7636 appendix B.
	if got := fapi.S256Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Errorf("S256 challenge %s", got)
	}
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		p, err := fapi.NewPKCE()
		if err != nil {
			t.Fatal(err)
		}
		if !fapi.ValidVerifier(p.Verifier) || len(p.Verifier) != 43 || p.Challenge != fapi.S256Challenge(p.Verifier) || seen[p.Verifier] {
			t.Fatalf("verifier %d not fit", i)
		}
		seen[p.Verifier] = true
	}
	for _, bad := range []string{"short", string(make([]byte, 129)), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+"} {
		if fapi.ValidVerifier(bad) {
			t.Errorf("verifier %q accepted", bad)
		}
	}
}

func TestStateAndNonce(t *testing.T) {
	s1, _ := fapi.NewState()
	s2, _ := fapi.NewState()
	n, _ := fapi.NewNonce()
	if len(s1) < 22 || s1 == s2 || len(n) < 22 || n == s1 { // 22 base64url characters carry 128 bits
		t.Fatalf("state %q %q nonce %q", s1, s2, n)
	}
	if !fapi.StateEqual(s1, s1) || fapi.StateEqual(s2, s1) || fapi.StateEqual("", "") || fapi.StateEqual(s1[:10], s1) {
		t.Error("StateEqual")
	}
}
