//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
)

// The hostile-input fuzzer's view of the mount: every path, operation and
// field, read from the OpenAPI document the real Vault serves.

// fuzzField is one request field (body or query) of an operation.
type fuzzField struct {
	Name      string
	Type      string // OpenAPI type: string, integer, boolean, array, object
	Format    string
	Enum      []any
	Sensitive string // "" when not sensitive, else why: "doc" or "name"
}

// fuzzOp is one operation of one path, as a client sends it.
type fuzzOp struct {
	Path   string // relative to the mount, e.g. config/{name}
	Method string // GET, POST, DELETE, PATCH
	List   bool   // GET with ?list=true
	Params []string
	Query  []fuzzField
	Body   []fuzzField
}

// Label names the operation in reports, e.g. "POST config/{name}".
func (o fuzzOp) Label() string {
	if o.List {
		return "LIST " + o.Path
	}
	return o.Method + " " + o.Path
}

// family is the first path segment (config, key, ...), which says which
// seeded names fit the path's {name}.
func (o fuzzOp) family() string {
	seg, _, _ := strings.Cut(o.Path, "/")
	switch seg {
	case "token", "status", "dpop", "consent":
		return "config"
	case "sign", "jwks":
		return "key"
	}
	return seg
}

// bankPath reports whether the operation may fetch from the bank, so that
// an upstream 502/503 is an acceptable answer: tokens, DPoP proofs and
// consents (PAR, the code's exchange, revocation).
func (o fuzzOp) bankPath() bool {
	seg, _, _ := strings.Cut(o.Path, "/")
	return seg == "token" || seg == "dpop" || (seg == "consent" && len(o.Params) > 1)
}

type oasSchema struct {
	Ref              string                `json:"$ref"`
	Type             string                `json:"type"`
	Format           string                `json:"format"`
	Properties       map[string]*oasSchema `json:"properties"`
	Items            *oasSchema            `json:"items"`
	Enum             []any                 `json:"enum"`
	DisplaySensitive bool                  `json:"x-vault-displaySensitive"`
	DisplayAttrs     *struct {
		Sensitive bool `json:"sensitive"`
	} `json:"x-vault-displayAttrs"`
}

type oasParam struct {
	Name   string     `json:"name"`
	In     string     `json:"in"`
	Schema *oasSchema `json:"schema"`
}

type oasOp struct {
	OperationID string     `json:"operationId"`
	Parameters  []oasParam `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema *oasSchema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
}

type oasDoc struct {
	Paths map[string]struct {
		Parameters []oasParam `json:"parameters"`
		Get        *oasOp     `json:"get"`
		Post       *oasOp     `json:"post"`
		Delete     *oasOp     `json:"delete"`
		Patch      *oasOp     `json:"patch"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]*oasSchema `json:"schemas"`
	} `json:"components"`
}

// sensitiveName is the fallback rule for documents that mark no field
// sensitive at all.
var sensitiveName = regexp.MustCompile(`secret|password|key|token|private|code|verifier`)

// loadSpec reads the mount's OpenAPI document (GET /v1/<mount>/?help=1;
// Vault 1.21's sys/internal/specs/openapi drops the request bodies' $ref)
// and returns its operations, sorted by label.
func loadSpec(addr, token, mount string) ([]fuzzOp, error) {
	req, _ := http.NewRequest("GET", addr+"/v1/"+mount+"/?help=1", nil)
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var help struct {
		OpenAPI oasDoc `json:"openapi"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&help); err != nil {
		return nil, fmt.Errorf("%s/?help=1: HTTP %d: %v", mount, resp.StatusCode, err)
	}
	ops := specOps(&help.OpenAPI)
	if len(ops) == 0 {
		return nil, fmt.Errorf("%s/?help=1: no paths (HTTP %d)", mount, resp.StatusCode)
	}
	return ops, nil
}

func specOps(doc *oasDoc) []fuzzOp {
	resolve := func(s *oasSchema) *oasSchema {
		if s != nil && s.Ref != "" {
			return doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		}
		return s
	}
	marked := false // does the document mark any field sensitive?
	for _, s := range doc.Components.Schemas {
		for _, p := range s.Properties {
			marked = marked || p.DisplaySensitive || (p.DisplayAttrs != nil && p.DisplayAttrs.Sensitive)
		}
	}
	field := func(name string, s *oasSchema) fuzzField {
		f := fuzzField{Name: name}
		if s = resolve(s); s != nil {
			f.Type, f.Format, f.Enum = s.Type, s.Format, s.Enum
			if s.DisplaySensitive || (s.DisplayAttrs != nil && s.DisplayAttrs.Sensitive) {
				f.Sensitive = "doc"
			}
		}
		if f.Sensitive == "" && !marked && sensitiveName.MatchString(strings.ToLower(name)) {
			f.Sensitive = "name"
		}
		return f
	}
	var ops []fuzzOp
	for p, item := range doc.Paths {
		rel := strings.TrimPrefix(p, "/")
		for method, op := range map[string]*oasOp{"GET": item.Get, "POST": item.Post, "DELETE": item.Delete, "PATCH": item.Patch} {
			if op == nil {
				continue
			}
			o := fuzzOp{Path: rel, Method: method}
			for _, prm := range append(append([]oasParam{}, item.Parameters...), op.Parameters...) {
				switch {
				case prm.In == "path":
					o.Params = append(o.Params, prm.Name)
				case prm.In == "query" && prm.Name == "list":
					o.List = true
				case prm.In == "query":
					o.Query = append(o.Query, field(prm.Name, prm.Schema))
				}
			}
			if op.RequestBody != nil {
				for _, c := range op.RequestBody.Content {
					if s := resolve(c.Schema); s != nil {
						for name, ps := range s.Properties {
							o.Body = append(o.Body, field(name, ps))
						}
					}
				}
			}
			sort.Slice(o.Body, func(i, j int) bool { return o.Body[i].Name < o.Body[j].Name })
			sort.Slice(o.Query, func(i, j int) bool { return o.Query[i].Name < o.Query[j].Name })
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Label() < ops[j].Label() })
	return ops
}
