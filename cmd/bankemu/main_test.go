package main

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

func TestParseFlagsDefaults(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.opts.FAPI
	if cfg.listen != "127.0.0.1:8300" || cfg.opts.TokenTTL != time.Minute || f.Client.ID != emulator.DefaultFAPIClientID ||
		!slices.Equal(f.Client.RedirectURIs, emulator.DefaultFAPIRedirectURIs) || f.User != "alice" || f.Deny ||
		f.GrantTTL != emulator.DefaultFAPIGrantTTL || f.NoDPoPNonce || f.Client.JWKSURI != "" || f.PublicURL != "" {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestParseFlagsFAPI(t *testing.T) {
	cfg, err := parseFlags([]string{"-fapi-client-id", "app", "-fapi-redirect-uris", "https://a.example/cb, http://127.0.0.1:9/cb",
		"-fapi-client-jwks-uri", "http://127.0.0.1:8200/v1/bankauth/jwks/obsig", "-fapi-user", "bob", "-fapi-deny",
		"-fapi-grant-ttl", "1h", "-fapi-no-dpop-nonce", "-fapi-public-url", "http://localhost:8300"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.opts.FAPI
	if f.Client.ID != "app" || !slices.Equal(f.Client.RedirectURIs, []string{"https://a.example/cb", "http://127.0.0.1:9/cb"}) ||
		f.Client.JWKSURI != "http://127.0.0.1:8200/v1/bankauth/jwks/obsig" || f.User != "bob" || !f.Deny || f.GrantTTL != time.Hour ||
		!f.NoDPoPNonce || f.PublicURL != "http://localhost:8300" {
		t.Fatalf("fapi options %+v", f)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"keys":[]}`), 0o600)
	var out bytes.Buffer
	if _, err := parseFlags([]string{"-fapi-client-jwks", bad}, &out); err == nil || !strings.Contains(out.String(), "FAPI client") {
		t.Fatalf("bad JWK Set accepted: %v %s", err, out.String())
	}
	if _, err := parseFlags([]string{"-fapi-client-jwks", filepath.Join(dir, "missing")}, io.Discard); err == nil {
		t.Fatal("missing JWK Set file accepted")
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Fatal("extra argument accepted")
	}
}

func TestPublicURL(t *testing.T) {
	for _, tc := range []struct {
		flagged, scheme string
		addr            net.Addr
		want            string
	}{
		{"", "http", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8300}, "http://127.0.0.1:8300"},
		{"", "https", &net.TCPAddr{IP: net.IPv6loopback, Port: 8300}, "https://[::1]:8300"},
		{"", "http", &net.TCPAddr{IP: net.IPv4zero, Port: 8300}, ""},
		{"http://emu:1", "http", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8300}, "http://emu:1"},
	} {
		if got := publicURL(tc.flagged, tc.scheme, tc.addr); got != tc.want {
			t.Errorf("publicURL(%q, %s, %v) = %q, want %q", tc.flagged, tc.scheme, tc.addr, got, tc.want)
		}
	}
}

// The request log names the path and provider, never the query (the
// authorization endpoint's request_uri) or the redirect's code.
func TestLogNoFAPISecrets(t *testing.T) {
	var buf bytes.Buffer
	log.SetOutput(&buf)
	defer log.SetOutput(os.Stderr)
	ts := httptest.NewServer(logRequests(emulator.New(emulator.Options{})))
	defer ts.Close()
	res, err := http.Get(ts.URL + emulator.FAPIAuthorizePath + "?client_id=emu-fapi-client&request_uri=urn:ietf:params:oauth:request_uri:SECRET")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	got := buf.String()
	if !strings.Contains(got, "GET /fapi/authorize provider=fapi status=400") || strings.Contains(got, "SECRET") {
		t.Fatalf("log %q", got)
	}
}
