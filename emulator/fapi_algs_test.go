package emulator

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/url"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Client assertions signed EdDSA and PS256, and DPoP proofs by those keys,
// are accepted; the server's answers are the same.
func TestFAPIAlgorithms(t *testing.T) {
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		sig, dpop crypto.Signer
		sigAlg    jose.SignatureAlgorithm
		dpopAlg   jose.SignatureAlgorithm
		pub       crypto.PublicKey
	}{
		{"EdDSA assertion, PS256 proof", edKey, rsaKey, jose.EdDSA, jose.PS256, edPub},
		{"PS256 assertion, EdDSA proof", rsaKey, edKey, jose.PS256, jose.EdDSA, &rsaKey.PublicKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: tc.pub, KeyID: "k", Use: "sig"}}})
			e := newFAPIEnv(t, FAPIOptions{Client: FAPIClient{ID: DefaultFAPIClientID, JWKS: set}})
			post := func(path string, form url.Values) resp {
				for try := 0; ; try++ {
					f := url.Values{"client_assertion_type": {clientAssertionType},
						"client_assertion": {sign(t, tc.sig, tc.sigAlg, e.assertionClaims(), (&jose.SignerOptions{}).WithHeader("kid", "k"))}}
					for k, v := range form {
						f[k] = v
					}
					proof := sign(t, tc.dpop, tc.dpopAlg, e.proofClaims(path), (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
					r := e.send(path, f, proof)
					if try > 0 || r.status != 400 || r.json(t)["error"] != "use_dpop_nonce" {
						return r
					}
				}
			}
			verifier, challenge := pkce()
			form := e.parForm(challenge)
			form.Set("dpop_jkt", thumbprint(t, tc.dpop.Public()))
			r := post(FAPIPARPath, form)
			wantStatus(t, r, 201)
			q := e.authorize(r.json(t)["request_uri"].(string))
			r = post(FAPITokenPath, codeForm(q.Get("code"), verifier))
			wantStatus(t, r, 200)
			if jkt, ok := e.s.FAPIAccessTokenValid(r.json(t)["access_token"].(string)); !ok || jkt != form.Get("dpop_jkt") {
				t.Fatal("access token not bound to the proof key")
			}
		})
	}
}

// Many clients' flows at once; racing refreshes of one token: one wins, and
// the reuse that loses revokes the grant.
func TestFAPIConcurrent(t *testing.T) {
	e := newFAPIEnv(t, FAPIOptions{})
	e.s.SetFAPIDPoPNonce(false) // the helpers' nonce is not shared safely
	var wg sync.WaitGroup
	toks := make([]map[string]any, 8)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := *e
			w.t = t
			toks[i], _ = w.grant()
		}()
	}
	wg.Wait()
	if st := e.s.FAPIStats(); st.Exchanges != 8 || len(e.s.FAPIGrants()) != 8 {
		t.Fatalf("stats %+v", st)
	}
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := *e
			statuses[i] = w.refresh(toks[0]["refresh_token"].(string)).status
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == 200 {
			ok++
		}
	}
	if ok != 1 || len(e.s.FAPIGrants()) != 7 || e.s.FAPIStats().ReuseDetected < 1 {
		t.Fatalf("racing refreshes: statuses %v, %d grants, stats %+v", statuses, len(e.s.FAPIGrants()), e.s.FAPIStats())
	}
}
