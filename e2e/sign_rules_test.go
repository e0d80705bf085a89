//go:build e2e

package e2e

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestSignOnlyMakesRequestSignatures (issue 18): a token whose policy is
// update on sign/<key> and nothing else asks the real Vault for a client
// assertion and a DPoP proof; each is a 400 naming the rule. A UK OB style
// detached JWS still verifies with the published JWK Set. Where the plugin
// signs a token anyway, the test says what go-jose makes of it.
func TestSignOnlyMakesRequestSignatures(t *testing.T) {
	t.Parallel()
	mount := fmt.Sprintf("bankauth-%d", mountSeq.Add(1))
	if err := vault.Mount("bankauth", mount); err != nil {
		t.Fatal(err)
	}
	cliJSON(t, "write", mount+"/key/sig", "type=rsa-2048", "purpose=client_auth,request_signing", "public_jwks=true")
	dpopJWK, _ := json.Marshal(cliJSON(t, "write", mount+"/key/dpop", "type=ec-p256", "purpose=dpop,request_signing", "public_jwks=true")["jwk"])
	app := signOnlyToken(t, mount, "sig", "dpop")
	enc := func(s string) string { return "payload=" + base64.StdEncoding.EncodeToString([]byte(s)) }
	aud := "https://as.bank.example/token"
	claims := fmt.Sprintf(`{"iss":"tpp-e2e","sub":"tpp-e2e","aud":%q,"exp":%d,"jti":"e2e-1"}`, aud, time.Now().Add(time.Hour).Unix())
	ath := sha256.Sum256([]byte("stolen-access-token"))
	proof := fmt.Sprintf(`{"jti":"e2e-2","htm":"POST","htu":"https://rs.bank.example/payments","iat":%d,"ath":%q}`,
		time.Now().Unix(), base64.RawURLEncoding.EncodeToString(ath[:]))

	for _, c := range []struct {
		what, key, payload, want string
		args                     []string
	}{
		{"client assertion, typ JWT", "sig", claims, "invalid header: typ must be JOSE", []string{"b64=true", `header={"typ":"JWT"}`}},
		{"client assertion, no typ", "sig", claims, "invalid payload: is a JWT or DPoP claims set", []string{"b64=true"}},
		{"client assertion, b64=false", "sig", claims, "invalid payload: is a JWT or DPoP claims set", nil},
		{"DPoP proof", "dpop", proof, "invalid header: may not carry jwk", []string{"b64=true", `header={"typ":"dpop+jwt","jwk":` + string(dpopJWK) + `}`}},
		{"crit typ", "sig", `{"Data":{}}`, "invalid crit: may name only extension", []string{`header={"typ":"JOSE"}`, "crit=typ"}},
	} {
		args := append([]string{"write", "-format=json", mount + "/sign/" + c.key, "format=jws_detached", enc(c.payload)}, c.args...)
		r := vault.CLI(app, args...)
		if r.ExitCode != 0 {
			if err := contains(r.Stderr, "Code: 400", c.want); err != nil || strings.Contains(r.Stderr, "tpp-e2e") {
				t.Errorf("%s: %v (%s)", c.what, err, r.Stderr)
			}
			continue
		}
		var sec struct{ Data map[string]any }
		_ = json.Unmarshal([]byte(r.Stdout), &sec)
		sig, _ := sec.Data["signature"].(string)
		t.Errorf("%s: the app got a signature; %s", c.what, asToken(t, mount, c.key, sig, []byte(c.payload), aud))
	}

	// A UK OB x-jws-signature still works: go-jose verifies one with the
	// JWK Set Vault publishes; with the UK OB crit names (which go-jose
	// refuses) the RFC 7797 input is checked with crypto/rsa.
	body := []byte(`{"Data":{"Initiation":{"InstructedAmount":{"Amount":"10.00","Currency":"GBP"}}},"Risk":{}}`)
	_, set := fetchJWKS(t, mount, "sig")
	pub := set.Keys[0].Key.(*rsa.PublicKey)
	ob := `header={"typ":"JOSE","cty":"application/json","http://openbanking.org.uk/iat":1764417600,` +
		`"http://openbanking.org.uk/iss":"0015800001041RHAAY","http://openbanking.org.uk/tan":"openbanking.org.uk"}`
	for _, extra := range [][]string{
		{`header={"typ":"JOSE","cty":"application/json"}`},
		{ob, "crit=http://openbanking.org.uk/iat,http://openbanking.org.uk/iss,http://openbanking.org.uk/tan"},
	} {
		args := append([]string{"write", "-format=json", mount + "/sign/sig", "format=jws_detached",
			"payload=" + base64.StdEncoding.EncodeToString(body)}, extra...)
		r := vault.CLI(app, args...)
		var sec struct{ Data map[string]any }
		if r.ExitCode != 0 || json.Unmarshal([]byte(r.Stdout), &sec) != nil {
			t.Fatalf("UK OB signature refused: %s", r.Stderr)
		}
		sig := sec.Data["signature"].(string)
		if len(extra) == 1 {
			obj, err := jose.ParseDetached(sig, body, []jose.SignatureAlgorithm{jose.PS256})
			if err != nil || obj.DetachedVerify(body, pub) != nil {
				t.Errorf("go-jose does not verify the UK OB signature: %v", err)
			}
			continue
		}
		p := strings.Split(sig, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(p[2])
		digest := sha256.Sum256(append([]byte(p[0]+"."), body...))
		if rsa.VerifyPSS(pub, crypto.SHA256, digest[:], raw, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
			t.Error("crypto/rsa does not verify the UK OB signature with crit names")
		}
	}
}

// signOnlyToken makes a token whose only policy is update on sign/<key>
// for each key named.
func signOnlyToken(t *testing.T, mount string, keys ...string) string {
	t.Helper()
	var hcl strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&hcl, "path %q {\n  capabilities = [\"update\"]\n}\n", mount+"/sign/"+k)
	}
	policy := filepath.Join(t.TempDir(), "sign-only.hcl")
	if err := os.WriteFile(policy, []byte(hcl.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.MustCLI("policy", "write", mount+"-sign-only", policy); err != nil {
		t.Fatal(err)
	}
	out, err := vault.MustCLI("token", "create", "-policy="+mount+"-sign-only", "-field=token")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// asToken re-attaches payload to a detached JWS from sign/<key> and checks
// it as a bank would, with go-jose and the JWK Set Vault publishes: as a
// client assertion for aud, or as a DPoP proof by the jwk in its header.
func asToken(t *testing.T, mount, key, detached string, payload []byte, aud string) string {
	t.Helper()
	p := strings.Split(detached, ".")
	if len(p) != 3 {
		return "not a detached JWS: " + detached
	}
	tok := p[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + p[2]
	algs := []jose.SignatureAlgorithm{jose.PS256, jose.ES256}
	parsed, err := jwt.ParseSigned(tok, algs)
	if err != nil {
		return "go-jose does not parse it as a JWT: " + err.Error()
	}
	if h := parsed.Headers[0]; h.JSONWebKey != nil {
		var c map[string]any
		if err := parsed.Claims(h.JSONWebKey.Key, &c); err != nil {
			return "the DPoP proof does not verify with its jwk: " + err.Error()
		}
		return fmt.Sprintf("go-jose verifies it as a DPoP proof (typ %v) by its jwk, claims %v", h.ExtraHeaders["typ"], c)
	}
	_, set := fetchJWKS(t, mount, key)
	var c jwt.Claims
	if err := parsed.Claims(set.Keys[0].Key, &c); err != nil {
		return "go-jose does not verify it with the JWKS: " + err.Error()
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: "tpp-e2e", Subject: "tpp-e2e", AnyAudience: jwt.Audience{aud},
		Time: time.Now()}, time.Minute); err != nil {
		return "its claims do not validate: " + err.Error()
	}
	return "a bank's go-jose accepts it as a private_key_jwt client assertion: " + tok
}
