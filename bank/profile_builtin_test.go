package bank_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// rawBank reads requests off the TCP connection as sent (header names in
// their exact spelling, which Go's HTTP server would canonicalise) and
// answers each path with a canned JSON body.
type rawBank struct {
	mu       sync.Mutex
	requests []string
	answers  map[string]string
	url      string
}

func newRawBank(t *testing.T, answers map[string]string) *rawBank {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	b := &rawBank{answers: answers, url: "http://" + l.Addr().String()}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go b.serve(conn)
		}
	}()
	return b
}

func (b *rawBank) serve(conn net.Conn) {
	defer conn.Close()
	r := textproto.NewReader(bufio.NewReader(conn))
	for {
		first, err := r.ReadLine()
		if err != nil {
			return
		}
		var lines []string
		length := 0
		for {
			l, err := r.ReadLine()
			if err != nil {
				return
			}
			if l == "" {
				break
			}
			name, value, _ := strings.Cut(l, ": ")
			switch name {
			case "Content-Length":
				length, _ = strconv.Atoi(value)
				continue
			case "User-Agent", "Accept-Encoding", "Host":
				continue
			case "Authorization":
				raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(value, "Basic "))
				value = "Basic raw(" + string(raw) + ")"
			}
			lines = append(lines, name+": "+value)
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(r.R, body); err != nil {
			return
		}
		sort.Strings(lines)
		method, target, _ := strings.Cut(strings.TrimSuffix(first, " HTTP/1.1"), " ")
		b.mu.Lock()
		b.requests = append(b.requests, method+" "+target+"\n"+strings.Join(lines, "\n")+"\n\n"+string(body))
		b.mu.Unlock()
		path, _, _ := strings.Cut(target, "?")
		answer := b.answers[path]
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
	}
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestBuiltinProfilesWireShapes pins every request the four built-in
// profiles send, byte for byte as it leaves the client, to the seed
// documents.
func TestBuiltinProfilesWireShapes(t *testing.T) {
	creds := emulator.DefaultCredentials()
	tokenAnswer := `{"access_token":"at","token_type":"bearer","expires_in":60,"refresh_token":"rt-1"}`
	cases := []struct {
		provider string
		prev     *bank.Token
		want     []string
	}{
		{emulator.Isbank, nil, []string{
			"GET /api/v1/s2s-oauth2/code\nAccept: application/json\nX-IBM-client-id: emu-client-id\nX-IBM-client-secret: " + creds.ClientSecret +
				"\nX-Service-Account-ID: emu-service-account-id\nX-Service-Account-Secret: emu-service-account-secret-7Hk2\nscope: read:accounts all:remittance all:eft\n\n",
			"GET /api/v1/s2s-oauth2/token\nAccept: application/json\nAuthorization: Basic raw(emu-client-id:" + creds.ClientSecret + ")\n" +
				"Content-Type: application/x-www-form-urlencoded\n\ngrant_type=authorization_code&code=c%2B1%2F",
		}},
		{emulator.Etranzact, nil, []string{"POST /auth/token\nAccept: application/json\nContent-Type: application/json\n\n" +
			`{"username":"emu-user","password":"emu-password-Xy9!"}`}},
		{emulator.Etranzact, &bank.Token{RefreshToken: "rt-0"}, []string{"POST /auth/token\nAccept: application/json\nContent-Type: application/json\n\n" +
			`{"refresh_token":"rt-0","grant_type":"refresh_token"}`}},
		{emulator.Rakbank, nil, []string{"POST /v1/partner_auth/token\nAccept: application/json\nContent-Type: application/json\nMsgId: <uuid>\n" +
			"X-IBM-Client-Id: emu-client-id\nX-IBM-Client-Secret: " + creds.ClientSecret + "\n\n" +
			`{"grant_type":"client_credentials","scope":"accounts","oauth_metadata":{"account_id":"0188000049916"}}`}},
		{emulator.AccelerationCloud, nil, []string{"POST /api/v1/auth/oauth2/token?grant_type=client_credentials&user_id=user-42\nAccept: application/json\n" +
			"Authorization: Basic raw(emu-client-id:" + creds.ClientSecret + ")\n\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.provider, func(t *testing.T) {
			fake := newRawBank(t, map[string]string{
				emulator.IsbankCodePath: `{"code":"c+1/"}`, emulator.IsbankTokenPath: tokenAnswer, emulator.EtranzactTokenPath: tokenAnswer,
				emulator.RakbankTokenPath: tokenAnswer, emulator.AccelerationCloudTokenPath: tokenAnswer})
			cfg := configFor(t, tc.provider, fake.url)
			if tc.provider == emulator.Rakbank {
				cfg.OAuthMetadata = map[string]any{"account_id": "0188000049916"}
			}
			tok, err := fetch(t, cfg, tc.prev)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "at" || tok.RefreshToken != "rt-1" {
				t.Errorf("token %v", tok)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if len(fake.requests) != len(tc.want) {
				t.Fatalf("%d requests, want %d: %q", len(fake.requests), len(tc.want), fake.requests)
			}
			for i, w := range tc.want {
				if got := uuidRE.ReplaceAllString(fake.requests[i], "<uuid>"); got != w {
					t.Errorf("request %d:\n%s\nwant:\n%s", i, got, w)
				}
			}
		})
	}
}
