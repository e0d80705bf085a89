// Package oidcop runs panva's oidc-provider, an OpenID Foundation certified
// authorization server that implements PAR (RFC 9126), PKCE, DPoP (RFC
// 9449), private_key_jwt, RFC 9207 and the FAPI 2.0 Security Profile, as the
// bank of bankauth's consent tests: an authorization server the project did
// not write. Test-only; it needs Node.js and the package that
// scripts/install-oidc-provider.sh installs (pinned by package-lock.json).
package oidcop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Client is a client registration (RFC 7591 metadata names).
type Client struct {
	ClientID                    string          `json:"client_id"`
	RedirectURIs                []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod     string          `json:"token_endpoint_auth_method"`
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	JWKS                        json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                     string          `json:"jwks_uri,omitempty"`
	GrantTypes                  []string        `json:"grant_types"`
	ResponseTypes               []string        `json:"response_types"`
	DPoPBoundAccessTokens       bool            `json:"dpop_bound_access_tokens,omitempty"`
	IDTokenSignedResponseAlg    string          `json:"id_token_signed_response_alg,omitempty"`
	AuthorizationDetailsTypes   []string        `json:"authorization_details_types,omitempty"`
}

// Options shape the authorization server.
type Options struct {
	Clients []Client
	// FAPI is the FAPI profile enforced ("2.0", or "" for none).
	FAPI string
	// DPoPNonce makes the server demand DPoP nonces (use_dpop_nonce) at
	// its PAR and token endpoints.
	DPoPNonce bool
	// NoPAR turns pushed authorization requests off (its metadata then
	// names no PAR endpoint), for clients that must send the request
	// through the browser. FAPI 2.0 needs PAR: use it with FAPI "".
	NoPAR bool
	// AccessTokenTTL and RefreshTokenTTL are lifetimes in seconds
	// (defaults 60 and 86400).
	AccessTokenTTL, RefreshTokenTTL int
}

// Server is a running authorization server on 127.0.0.1.
type Server struct {
	Issuer string

	cmd  *exec.Cmd
	dir  string
	log  *lockedBuffer
	done chan struct{}
}

// Start installs (once, cached) and starts the server, and returns when its
// discovery document answers.
func Start(opts Options) (*Server, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("oidcop: node not found (scripts/install-oidc-provider.sh installs it)")
	}
	modDir, err := InstallDir()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bankauth-oidcop-")
	if err != nil {
		return nil, err
	}
	s := &Server{Issuer: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir, log: &lockedBuffer{}, done: make(chan struct{})}
	conf, err := json.Marshal(map[string]any{
		"port": port, "issuer": s.Issuer, "clients": opts.Clients, "fapi": opts.FAPI, "dpopNonce": opts.DPoPNonce, "noPAR": opts.NoPAR,
		"accessTokenTTL": opts.AccessTokenTTL, "refreshTokenTTL": opts.RefreshTokenTTL,
	})
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(node, filepath.Join(sourceDir(), "server.mjs"), confPath)
	s.cmd.Env = append(os.Environ(), "OIDC_PROVIDER_DIR="+modDir, "NODE_ENV=test")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("oidcop: the server exited: %s", s.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("oidcop: no discovery document after 30s: %s", s.Log())
		}
	}
}

// InstallDir runs scripts/install-oidc-provider.sh (a no-op once cached)
// and returns the directory holding node_modules/oidc-provider; the
// environment's OIDC_PROVIDER_DIR, when set, is used instead.
func InstallDir() (string, error) {
	if d := os.Getenv("OIDC_PROVIDER_DIR"); d != "" {
		return d, nil
	}
	installOnce.Do(func() {
		script := filepath.Join(sourceDir(), "..", "..", "scripts", "install-oidc-provider.sh")
		var stderr bytes.Buffer
		cmd := exec.Command("bash", script)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			installErr = fmt.Errorf("oidcop: %s: %v: %s", script, err, stderr.String())
			return
		}
		installDir = strings.TrimSpace(string(out))
	})
	return installDir, installErr
}

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// Withdraw revokes every grant of account at the bank, as a user
// withdrawing consent in their bank's app does.
func (s *Server) Withdraw(account string) error {
	resp, err := http.Post(s.Issuer+"/_test/withdraw?account="+url.QueryEscape(account), "text/plain", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("oidcop: withdraw answered %d", resp.StatusCode)
	}
	return nil
}

// Events counts the token events of that name the server has fired so far
// (refresh_token.consumed, refresh_token.destroyed,
// authorization_code.consumed, grant.revoked), asked of the server itself:
// it counts them before it answers, while its log may lag behind. -1 when
// it cannot be asked.
func (s *Server) Events(name string) int {
	resp, err := http.Get(s.Issuer + "/_test/events")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var counts map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&counts); err != nil {
		return -1
	}
	return counts[name]
}

// Log is what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// Close stops the server and removes its files.
func (s *Server) Close() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

// sourceDir is this package's directory, where server.mjs lives.
func sourceDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer is a bytes.Buffer safe for the process's writers and a
// reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Follow is the automated user's browser: it opens authURL with a cookie
// jar, sends header with every request (X-Test-User, X-Test-Decision), and
// stops at the first redirect to a URL starting with redirectPrefix, which
// it returns: what the app receives at its redirect URI.
func Follow(authURL, redirectPrefix string, header http.Header) (string, error) {
	jar, _ := cookiejar.New(nil)
	ua := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), redirectPrefix) {
			return http.ErrUseLastResponse
		}
		for k, v := range header {
			r.Header[k] = v
		}
		return nil
	}}
	req, err := http.NewRequest(http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ua.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, redirectPrefix) {
		return "", fmt.Errorf("oidcop: the user ended at HTTP %d, not the redirect URI", resp.StatusCode)
	}
	return loc, nil
}

// DPoPGet sends GET url with a DPoP-bound access token and its proof, as a
// resource request does (the server's userinfo endpoint is one), and
// returns the status, the body and the DPoP-Nonce the server gave.
func DPoPGet(url, token, proof string) (int, string, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), resp.Header.Get("DPoP-Nonce"), err
}
