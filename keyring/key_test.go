package keyring_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"github.com/bankauth/vault-plugin-secrets-bankauth/keyring"
)

func TestGenerateEachType(t *testing.T) {
	want := map[string]int{keyring.TypeRSA2048: 2048, keyring.TypeRSA3072: 3072, keyring.TypeRSA4096: 4096,
		keyring.TypeECP256: 256, keyring.TypeECP384: 384}
	for _, typ := range keyring.Types {
		k := testKey(t, typ)
		if k.LatestVersion() != 1 || k.MinVersion != 1 || k.Type != typ {
			t.Fatalf("%s: latest %d min %d type %s", typ, k.LatestVersion(), k.MinVersion, k.Type)
		}
		switch p := publicOf(t, k.Latest()).(type) {
		case *rsa.PublicKey:
			if p.N.BitLen() != want[typ] {
				t.Errorf("%s: %d bits", typ, p.N.BitLen())
			}
		case *ecdsa.PublicKey:
			if p.Curve.Params().BitSize != want[typ] {
				t.Errorf("%s: curve %s", typ, p.Curve.Params().Name)
			}
		default:
			t.Errorf("%s: public key %T", typ, p)
		}
	}
	if _, err := keyring.Generate("rsa-1024", nil, t0); err == nil {
		t.Error("rsa-1024 was accepted")
	}
}

func TestRotateKeepsPublishedVersions(t *testing.T) {
	k := freshKey(t, keyring.TypeECP256)
	for i := 0; i < 2; i++ {
		if err := k.Rotate(nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	if k.LatestVersion() != 3 || len(k.Published()) != 3 {
		t.Fatalf("latest %d, published %d", k.LatestVersion(), len(k.Published()))
	}
	kids := map[string]bool{}
	for _, v := range k.Versions {
		kids[v.KID] = true
	}
	if len(kids) != 3 {
		t.Errorf("versions share kids: %v", kids)
	}
	if err := k.SetMinVersion(2); err != nil {
		t.Fatal(err)
	}
	if p := k.Published(); len(p) != 2 || p[0].Number != 2 {
		t.Errorf("published after min_version=2: %d versions from %d", len(p), p[0].Number)
	}
	for _, bad := range []int{0, 4} {
		if err := k.SetMinVersion(bad); err == nil {
			t.Errorf("min_version %d accepted", bad)
		}
	}
}

func TestSetKIDNamesTheLatestVersion(t *testing.T) {
	k := freshKey(t, keyring.TypeECP256)
	if err := k.SetKID("directory-kid-1"); err != nil {
		t.Fatal(err)
	}
	if err := k.Rotate(nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := k.SetKID("directory-kid-1"); err == nil {
		t.Error("a kid another version has was accepted")
	}
	for _, bad := range []string{"", "has space", `q"uote`, strings.Repeat("a", 300)} {
		if err := k.SetKID(bad); err == nil {
			t.Errorf("kid %q accepted", bad)
		}
	}
	if k.Versions[0].KID != "directory-kid-1" {
		t.Errorf("version 1 kid %q", k.Versions[0].KID)
	}
}

func TestImportFormatsAndRefusals(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	cases := map[string]struct {
		pem  string
		want string
	}{
		"sec1":  {string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})), keyring.TypeECP384},
		"pkcs1": {string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})), keyring.TypeRSA2048},
		"pkcs8": {string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})), keyring.TypeRSA2048},
	}
	for name, c := range cases {
		k, err := keyring.Import(c.pem, t0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k.Type != c.want || !k.Imported {
			t.Errorf("%s: type %s imported %v", name, k.Type, k.Imported)
		}
		pub := publicOf(t, k.Latest()).(interface{ Equal(crypto.PublicKey) bool })
		var orig any = ec.Public()
		if c.want != keyring.TypeECP384 {
			orig = rsaKey.Public()
		}
		if !pub.Equal(orig) {
			t.Errorf("%s: imported a different key", name)
		}
	}

	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	p521DER, _ := x509.MarshalECPrivateKey(p521)
	smallPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))
	p521PEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p521DER}))
	broken := strings.Replace(smallPEM, "MII", "MIX", 1)
	for name, in := range map[string]string{"rsa-1024": smallPEM, "p521": p521PEM, "broken": broken, "not pem": "hello"} {
		_, err := keyring.Import(in, t0)
		if err == nil {
			t.Errorf("%s accepted", name)
			continue
		}
		body := strings.Split(in, "\n")
		if len(body) > 2 && strings.Contains(err.Error(), body[1][:20]) {
			t.Errorf("%s: error quotes the key: %v", name, err)
		}
	}
}

// A key printed or logged by mistake shows no private material.
func TestPrivateMaterialNeverPrints(t *testing.T) {
	k := testKey(t, keyring.TypeECP256)
	der := []byte(k.Latest().Private)
	secrets := []string{base64.StdEncoding.EncodeToString(der)[:24], fmt.Sprintf("%x", der)[:24], string(der[8:24])}
	out := fmt.Sprintf("%v %+v %#v %s %x %q", k, *k, *k.Latest(), k.Latest().Private, k.Latest().Private, k.Latest().Private)
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("printing a key shows its private material: %s", out)
		}
	}
	if !strings.Contains(out, "<redacted>") {
		t.Errorf("no <redacted> in %s", out)
	}
	// Storage still round-trips it.
	enc, _ := json.Marshal(k)
	var back keyring.Key
	if err := json.Unmarshal(enc, &back); err != nil {
		t.Fatal(err)
	}
	if string(back.Latest().Private) != string(der) {
		t.Error("JSON round trip lost the private key")
	}
}
