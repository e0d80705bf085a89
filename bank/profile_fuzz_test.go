package bank

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// FuzzProfile feeds arbitrary documents to the profile validator and, for
// each one it accepts, runs the renderer on every login and refresh step
// twice: with plain field values it must build a request that net/http
// accepts (no profile is accepted that cannot then run); with the fuzzed
// value it must not panic, may fail only on what that value makes
// impossible (a line break in a header, a private key that is no key), and
// must never send the request to a host other than the step's literal one
// or base_url's.
func FuzzProfile(f *testing.F) {
	for _, name := range []string{"isbank", "etranzact", "rakbank", "accelerationcloud"} {
		doc, err := builtinProfiles.ReadFile("profiles/" + name + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc, "value")
	}
	if doc, err := os.ReadFile("../docs/profiles/interswitch.json"); err == nil {
		f.Add(doc, "attacker.example/x?")
	}
	for _, seed := range []string{
		`{"fields":[{"name":"region"}],"steps":[{"name":"t","method":"POST","url":"https://auth.bank.example/{{field.region}}?r={{field.region}}"}]}`,
		`{"fields":[{"name":"k","secret":true}],"steps":[{"name":"t","method":"GET","path":"/t","headers":{"X-Key":"K {{field.k}}"},"basic_auth":{"username":"u","password":"{{field.k}}","encoding":"rfc6749"}}]}`,
		`{"steps":[{"name":"t","method":"POST","path":"/%zz"}]}`,
		`{"steps":[{"name":"t","method":"POST","url":"https://bank.example/%zz?q=%"}]}`,
		`{"steps":[{"name":"t","method":"POST","path":"/t","query":{"a b":"{{gen.uuid}}"},"headers":{"X":"a\u0000b"}}]}`,
		`{"steps":[{"name":"a","method":"POST","path":"/a","extract":{"c":"code"}},{"name":"b","method":"POST","path":"/b/{{step.a.c}}","body":{"type":"json","fields":{"c":"{{step.a.c}}","n":1}}}],"refresh":{"steps":[{"name":"r","method":"POST","path":"/r","body":{"type":"form","fields":{"rt":"{{token.refresh_token}}"}}}]}}`,
	} {
		f.Add([]byte(seed), "a\r\nb")
	}
	f.Fuzz(func(t *testing.T, doc []byte, value string) {
		p, err := ParseProfile(doc)
		if err != nil {
			return
		}
		prov, err := NewProfileProvider("fuzz", p)
		if err != nil {
			t.Fatalf("ParseProfile accepted a profile NewProfileProvider refuses: %v", err)
		}
		pp := prov.(*profileProvider)
		for _, v := range []string{"plain-value", value} {
			cfg := &Config{Provider: "fuzz", BaseURL: "https://bank.example", Settings: map[string]string{}, Secrets: map[string]string{}}
			for _, fl := range p.Fields {
				switch {
				case fl.Type == "json":
					cfg.OAuthMetadata = map[string]any{"v": v}
				case fl.Secret:
					cfg.Secrets[fl.Name] = v
				default:
					cfg.Settings[fl.Name] = v
				}
			}
			cfg.UseProvider(pp)
			c := &Client{cfg: cfg, provider: pp, baseURL: cfg.BaseURL, now: time.Now}
			for _, steps := range [][]Step{p.Steps, refreshSteps(p)} {
				values := map[string]map[string]string{}
				for _, s := range steps {
					rc := &renderContext{cfg: cfg, steps: values, refreshToken: v, now: time.Now()}
					x, err := pp.exchange(c, s, rc)
					if err != nil {
						msg := err.Error()
						if v != "plain-value" && strings.Contains(msg, "line break") || strings.HasPrefix(msg, "client assertion") {
							continue
						}
						t.Fatalf("step %s cannot be rendered with value %q: %v", s.Name, v, err)
					}
					target := x.url
					if target == "" {
						target = c.baseURL + x.path
					}
					req, err := http.NewRequest(x.method, target, bytes.NewReader(x.body))
					if err != nil {
						t.Fatalf("step %s renders a request net/http refuses (value %q): %v", s.Name, v, err)
					}
					for name, vals := range x.header {
						for _, hv := range vals {
							if v == "plain-value" && !httpguts.ValidHeaderFieldValue(hv) {
								t.Fatalf("step %s renders header %s=%q, which net/http will not send", s.Name, name, hv)
							}
						}
					}
					want := "bank.example"
					if s.URL != "" {
						origin, _, _ := splitStepURL(s.URL)
						u, _ := url.Parse(origin)
						want = u.Host
					}
					if req.URL.Host != want {
						t.Fatalf("step %s went to %q, want %q (value %q)", s.Name, req.URL.Host, want, v)
					}
					names := map[string]string{}
					for name := range s.Extract {
						names[name] = v
					}
					values[s.Name] = names
				}
			}
		}
	})
}
