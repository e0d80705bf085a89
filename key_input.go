package bankauth

import (
	"encoding/json"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
)

// keyInput prepares requests to key/ and sign/ before the framework parses
// them. A JSON object sent through the API for sign's header or headers is
// re-encoded as the JSON string the schema declares. A non-string key or
// certificate is refused here, naming the field, because the framework's
// own message would quote the value, and key is a private key.
func keyInput(req *logical.Request) *logical.Response {
	switch {
	case strings.HasPrefix(req.Path, signPathPrefix):
		for _, f := range []string{fieldSignHeader, fieldSignHeaders} {
			if v, ok := req.Data[f]; ok && v != nil {
				if _, isString := v.(string); !isString {
					if enc, err := json.Marshal(v); err == nil {
						req.Data[f] = string(enc)
					}
				}
			}
		}
	case strings.HasPrefix(req.Path, keyPrefix):
		for _, f := range []string{"key", "certificate"} {
			if v, ok := req.Data[f]; ok && v != nil {
				if _, isString := v.(string); !isString {
					return logical.ErrorResponse("invalid %s: must be a PEM string", f)
				}
			}
		}
	}
	return nil
}
