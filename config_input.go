package bankauth

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// badConfigInput refuses, with a 400 naming the field and before anything is
// stored, what the framework would answer badly: an empty field name (its
// message would name no field), and a JSON list or object sent for a field
// that takes a string (the framework's message quotes the value, and the
// value may be a client secret or a password).
func badConfigInput(req *logical.Request) *logical.Response {
	if !strings.HasPrefix(req.Path, configPrefix) || len(req.Data) == 0 {
		return nil
	}
	fields := configFields()
	keys := make([]string, 0, len(req.Data))
	for k := range req.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" {
			return logical.ErrorResponse(`invalid field "": a field name must not be empty`)
		}
		f, ok := fields[k]
		if !ok || (f.Type != framework.TypeString && f.Type != framework.TypeNameString) {
			continue
		}
		switch req.Data[k].(type) {
		case nil, string, bool, json.Number, int, int64, float64:
		default:
			return logical.ErrorResponse("invalid %s: must be a string", k)
		}
	}
	return nil
}
