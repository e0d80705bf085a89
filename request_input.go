package bankauth

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Caller input is checked here, before the framework parses it, on every
// path: the framework's own messages quote the value they could not parse,
// and the value may be a client secret or a private key. Errors name the
// field and what it expects, never the value.

// routes maps a request path to its framework.Path and the names captured
// from it, as the framework's router does (first match wins).
type routes struct {
	paths []*framework.Path
	res   []*regexp.Regexp
}

// newRoutes compiles the patterns of paths, anchored as the framework
// anchors them.
func newRoutes(paths []*framework.Path) routes {
	r := routes{paths: paths, res: make([]*regexp.Regexp, len(paths))}
	for i, p := range paths {
		pat := p.Pattern
		if !strings.HasPrefix(pat, "^") {
			pat = "^" + pat
		}
		if !strings.HasSuffix(pat, "$") {
			pat += "$"
		}
		r.res[i] = regexp.MustCompile(pat)
	}
	return r
}

// match returns the path serving reqPath and its captures; nil when none does.
func (r routes) match(reqPath string) (*framework.Path, map[string]string) {
	for i, re := range r.res {
		m := re.FindStringSubmatch(reqPath)
		if m == nil {
			continue
		}
		captures := map[string]string{}
		for j, n := range re.SubexpNames() {
			if n != "" {
				captures[n] = m[j]
			}
		}
		return r.paths[i], captures
	}
	return nil, nil
}

// jsonObjectFields are fields that take a JSON object: the framework has no
// type for "any JSON", so the schema declares a string and an object sent
// through the HTTP API is re-encoded to that string form.
var jsonObjectFields = map[string]bool{
	fieldOAuthMetadata:      true, // config/<name> (rakbank)
	fieldProfile:            true, // profile/<name>
	fieldSignHeader:         true, // sign/<key>
	fieldSignHeaders:        true, // sign/<key>
	fieldAuthorizationDetls: true, // consent/<config>/<id> (a JSON array)
	fieldClaims:             true, // consent/<config>/<id>
	fieldParams:             true, // consent/<config>/<id>
}

// checkInput prepares req.Data for the framework and refuses, with a 400
// naming the field or the name, what the framework would answer badly: a
// name that breaks the naming rule, an empty field name, and a value the
// field's type cannot take. nil: the request may go on.
func checkInput(req *logical.Request, p *framework.Path, captures map[string]string) *logical.Response {
	if msg := nameProblem(captures, req.Operation == logical.CreateOperation); msg != "" {
		return logical.ErrorResponse("%s", msg)
	}
	if req.Operation == logical.HelpOperation || len(req.Data) == 0 {
		return nil
	}
	keys := make([]string, 0, len(req.Data))
	for k := range req.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" {
			return logical.ErrorResponse(`invalid field "": a field name must not be empty`)
		}
		f, inSchema := p.Fields[k]
		if _, captured := captures[k]; !inSchema || captured {
			continue // the framework ignores it, or the path's own value wins
		}
		v := req.Data[k]
		if jsonObjectFields[k] && v != nil {
			switch v.(type) {
			case map[string]any, []any:
				enc, err := json.Marshal(v)
				if err != nil {
					return logical.ErrorResponse("invalid %s: expected a JSON object or its string form", k)
				}
				req.Data[k] = string(enc)
				continue
			}
		}
		if !parses(k, f, v) {
			return logical.ErrorResponse("invalid %s: expected %s", k, expected(f.Type))
		}
	}
	return nil
}

// parses reports whether the framework can convert v to field k's type.
func parses(k string, f *framework.FieldSchema, v any) bool {
	fd := framework.FieldData{Raw: map[string]any{k: v}, Schema: map[string]*framework.FieldSchema{k: f}}
	return fd.Validate() == nil
}

// expected says in words what a field of type t takes.
func expected(t framework.FieldType) string {
	switch t {
	case framework.TypeString, framework.TypeLowerCaseString:
		return "a string"
	case framework.TypeNameString:
		return "a name (" + nameRule + ")"
	case framework.TypeBool:
		return "a boolean"
	case framework.TypeInt, framework.TypeInt64:
		return "an integer"
	case framework.TypeFloat:
		return "a number"
	case framework.TypeDurationSecond, framework.TypeSignedDurationSecond:
		return "a duration: seconds, or a number with a unit such as 90s or 10m"
	case framework.TypeCommaStringSlice, framework.TypeStringSlice:
		return "a list of strings or a comma-separated string"
	case framework.TypeMap:
		return "a JSON object"
	default:
		return "a " + t.String()
	}
}
