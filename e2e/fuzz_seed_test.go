//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/emulator"
)

// The objects the fuzzer seeds before it starts, the snapshots that show a
// rejected write changed nothing, and the guard that keeps bank requests on
// loopback.

// seedSettings is the mount's egress policy during the run: loopback only.
var seedSettings = map[string]any{"allow_loopback": true, "allowed_hosts": "127.0.0.0/8,::1", "unauthenticated_metrics": false}

// oauth2Stub is a minimal RFC 6749 token endpoint on loopback.
func oauth2Stub(t *testing.T) string {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 16)
		rand.Read(b)
		tok := "stub-at-" + hex.EncodeToString(b)
		seen.add(tok)
		typ := "Bearer"
		if r.Header.Get("DPoP") != "" {
			typ = "DPoP"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": typ, "expires_in": 300})
	}))
	t.Cleanup(hs.Close)
	return hs.URL + "/token"
}

// seed writes the seeded objects and records their names and secrets.
func (f *fuzzer) seed(t *testing.T, emuURL string) {
	g := f.g
	g.emuURL, g.tokenURL = emuURL, oauth2Stub(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	g.keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	f.secrets = append(f.secrets, strings.Split(g.keyPEM, "\n")[1]) // a line of the key's base64
	prof, err := os.ReadFile(docsProfile("interswitch.json"))
	if err != nil {
		t.Fatal(err)
	}
	g.profile = withSecretField(strings.Replace(string(prof), "https://sandbox.interswitchng.com", emuURL, 1))

	creds := emulator.DefaultCredentials()
	f.secrets = append(f.secrets, creds.Secrets()...)
	const stubSecret = "stub-client-secret-Qv8/+w=="
	f.secrets = append(f.secrets, stubSecret)
	must := func(method, path string, data any) {
		t.Helper()
		if code, body, err := f.do(method, path, data); err != nil || code >= 300 {
			t.Fatalf("seed %s %s: HTTP %d %v %s", method, path, code, err, body)
		}
	}
	must("POST", "settings", seedSettings)
	must("POST", "key/k1", map[string]any{"type": "ec-p256", "purpose": "request_signing,client_auth", "public_jwks": true,
		"allowed_endpoints": g.tokenURL, "allowed_audiences": "https://as.bank.example"})
	must("POST", "key/k2", map[string]any{"type": "ec-p256", "purpose": "dpop"})
	must("POST", "key/kimp", map[string]any{"key": g.keyPEM, "kid": "imported", "purpose": []string{"tls", "request_signing"}})
	must("POST", "key/kfapi", map[string]any{"type": "ec-p256", "purpose": "client_auth", "public_jwks": true,
		"allowed_endpoints": emuURL + "/fapi/", "allowed_audiences": emuURL + "/fapi"})
	must("POST", "profile/fzprof", map[string]any{"profile": g.profile})
	for _, p := range emulator.Providers {
		must("POST", "config/"+p, emulator.ConfigData(p, emuURL, creds))
	}
	must("POST", "config/oauth2", map[string]any{"provider": "oauth2", "token_url": g.tokenURL, "client_id": "stub",
		"client_secret": stubSecret, "auth_method": "client_secret_post"})
	must("POST", "config/oauth2dpop", map[string]any{"provider": "oauth2", "token_url": g.tokenURL, "client_id": "stub",
		"client_secret": stubSecret, "dpop_key": "k2"})
	must("POST", "config/isw", map[string]any{"provider": "fzprof", "client_id": "isw", "client_secret": stubSecret,
		profileSecret.Name: stubSecret})
	for i, op := range f.ops {
		if op.Label() == "POST config/{name}" {
			f.ops[i].Body = append(op.Body, profileSecret)
		}
	}
	// A user-consent config (issue 19): its write fetches the emulator's
	// FAPI 2.0 metadata.
	must("POST", "config/obank", map[string]any{"provider": "oauth2", "grant_type": "authorization_code",
		"issuer": emuURL + "/fapi", "client_id": "emu-fapi-client", "auth_method": "private_key_jwt",
		"signing_key": "kfapi", "dpop_key": "k2", "redirect_uris": "https://app.example/cb",
		"scope": "openid accounts offline_access"})
	for _, c := range []string{"rakbank", "oauth2", "oauth2dpop"} {
		must("GET", "token/"+c, nil)
	}
	g.names = map[string][]string{
		"config":  append(append([]string{}, emulator.Providers...), "oauth2", "oauth2dpop", "isw", "obank"),
		"key":     {"k1", "k2", "kimp", "kfapi"},
		"profile": {"fzprof"},
	}
	f.snaps = map[string]string{}
	f.rebaseline()
	if len(f.snaps) == 0 {
		t.Fatal("no seeded object to snapshot")
	}
}

// profileSecret is a secret field the seeded profile declares, which the
// mount's OpenAPI document cannot know: configs of that profile take it.
var profileSecret = fuzzField{Name: "api_key", Type: "string", Sensitive: "profile"}

// withSecretField adds profileSecret to a profile document, sent in a
// header of its first step.
func withSecretField(doc string) string {
	var p map[string]any
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		panic(err)
	}
	p["fields"] = append(p["fields"].([]any), map[string]any{"name": profileSecret.Name, "secret": true,
		"description": "An API key the fuzzer's profile sends in a header."})
	step := p["steps"].([]any)[0].(map[string]any)
	step["headers"].(map[string]any)["X-Api-Key"] = "{{field." + profileSecret.Name + "}}"
	b, _ := json.Marshal(p)
	return string(b)
}

func (f *fuzzer) isSeeded(family, name string) bool {
	for _, n := range f.g.names[family] {
		if n == name {
			return true
		}
	}
	return false
}

// snapshotPaths are the reads that show the seeded objects.
func (f *fuzzer) snapshotPaths() []string {
	out := []string{"settings"}
	for fam, names := range map[string][]string{"config": f.g.names["config"], "key": f.g.names["key"], "profile": f.g.names["profile"]} {
		for _, n := range names {
			out = append(out, fam+"/"+n)
		}
	}
	return out
}

// snapshot reads path; the status and the answer's data, nothing else.
func (f *fuzzer) snapshot(path string) string {
	code, body, err := f.do("GET", path, nil)
	if err != nil {
		return "error: " + err.Error()
	}
	var ans struct {
		Data any `json:"data"`
	}
	json.Unmarshal(body, &ans)
	b, _ := json.Marshal(ans.Data)
	return fmt.Sprintf("%d %s", code, b)
}

// rebaseline takes every seeded object's snapshot afresh.
func (f *fuzzer) rebaseline() {
	for _, p := range f.snapshotPaths() {
		f.snaps[p] = f.snapshot(p)
	}
	f.stale = map[string]bool{}
}

// markStale notes that a write went through: no snapshot can be trusted.
func (f *fuzzer) markStale() {
	for _, p := range f.snapshotPaths() {
		f.stale[p] = true
	}
}

// refresh takes new snapshots of those of paths that are stale.
func (f *fuzzer) refresh(paths []string) {
	for _, p := range paths {
		if f.stale[p] {
			f.snaps[p] = f.snapshot(p)
			delete(f.stale, p)
		}
	}
}

// related are the snapshots a write to r's object may touch.
func (f *fuzzer) related(r *fuzzReq) []string {
	if r.Op.Path == "settings" {
		return []string{"settings"}
	}
	return []string{r.Op.family() + "/" + r.Name}
}

// changed returns the paths among paths whose reads differ from their
// (fresh) snapshots, with before and after.
func (f *fuzzer) changed(paths []string) []string {
	var out []string
	for _, p := range paths {
		if f.stale[p] {
			continue
		}
		if now := f.snapshot(p); now != f.snaps[p] {
			out = append(out, fmt.Sprintf("%s: before %s, after %s", p, clip(f.snaps[p], 300), clip(now, 300)))
			f.snaps[p] = now
		}
	}
	return out
}

// urlRE finds absolute URLs and captures their authority.
var urlRE = regexp.MustCompile(`(?i)[a-z][a-z0-9+.-]*://([^/?#\s"\\]*)`)

var loopbackHost = regexp.MustCompile(`^127\.\d+\.\d+\.\d+(:\d+)?$`)

// loopbackOnly reports whether every URL in text names a loopback host.
func loopbackOnly(text string) bool {
	for _, m := range urlRE.FindAllStringSubmatch(text, -1) {
		host := m[1]
		if i := strings.LastIndexByte(host, '@'); i >= 0 {
			host = host[i+1:]
		}
		if strings.HasPrefix(host, "[::1]") || host == "" {
			continue
		}
		if !loopbackHost.MatchString(host) {
			return false
		}
	}
	return true
}

// fetchSafe reports whether a token fetch for config name can only reach
// loopback: the config's effective base_url (or oauth2 token_url) is
// loopback, and so is every other URL in the config and its profile. The
// fuzzer never lets the plugin try a host elsewhere, whatever it accepted.
func (f *fuzzer) fetchSafe(name string) bool {
	code, body, err := f.do("GET", "config/"+name, nil)
	if err != nil || code != 200 {
		return true // no config: nothing to fetch
	}
	var cfg struct {
		Data map[string]any `json:"data"`
	}
	if json.Unmarshal(body, &cfg) != nil {
		return false
	}
	base, _ := cfg.Data["base_url"].(string)
	prov, _ := cfg.Data["provider"].(string)
	delete(cfg.Data, "redirect_uris") // the app's, where the bank sends the user: never fetched
	cb, _ := json.Marshal(cfg.Data)
	text := string(cb)
	if prov == "oauth2" {
		base, _ = cfg.Data["token_url"].(string)
	} else {
		code, pb, err := f.do("GET", "profile/"+url.PathEscape(prov), nil)
		if err != nil || code != 200 {
			return false
		}
		var p struct {
			Data struct {
				Profile map[string]any `json:"profile"`
			} `json:"data"`
		}
		if json.Unmarshal(pb, &p) != nil {
			return false
		}
		delete(p.Data.Profile, "base_url") // the config's effective base_url stands for it
		doc, _ := json.Marshal(p.Data.Profile)
		text += string(doc)
	}
	return urlRE.MatchString(base) && loopbackOnly(base) && loopbackOnly(text)
}

// restoreSettings puts the run's egress policy back after a fuzz write
// to settings got through.
func (f *fuzzer) restoreSettings() {
	if code, body, err := f.do("POST", "settings", seedSettings); err != nil || code >= 300 {
		f.fails.add("POST settings", finding{Kind: "the fuzzer could not restore settings", Detail: fmt.Sprintf("HTTP %d %v %s", code, err, clip(string(body), 200))}, nil)
	}
}
