package bankauth

import (
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/jonboulle/clockwork"
)

// TestEveryOperationIsNamed checks that every operation of every path is
// named through DisplayAttrs (prefix on the path, verb on the operation),
// so Vault's OpenAPI operation ids never fall back to ones derived from the
// path. e2e TestOpenAPIOperationIDs checks the ids a real Vault produces.
func TestEveryOperationIsNamed(t *testing.T) {
	b := newBackend(clockwork.NewRealClock())
	for _, p := range b.Paths {
		if p.DisplayAttrs == nil || p.DisplayAttrs.OperationPrefix != "bankauth" {
			t.Errorf("%s: no OperationPrefix bankauth", p.Pattern)
		}
		if p.HelpSynopsis == "" || p.HelpDescription == "" {
			t.Errorf("%s: no help text", p.Pattern)
		}
		for field, schema := range p.Fields {
			if schema.Description == "" {
				t.Errorf("%s: field %s has no description", p.Pattern, field)
			}
		}
		for op, h := range p.Operations {
			po, ok := h.(*framework.PathOperation)
			if !ok || po.DisplayAttrs == nil || po.DisplayAttrs.OperationVerb == "" {
				t.Errorf("%s %s: no OperationVerb", op, p.Pattern)
				continue
			}
			if po.DisplayAttrs.OperationSuffix == "" && p.DisplayAttrs != nil && p.DisplayAttrs.OperationSuffix == "" {
				t.Errorf("%s %s: no OperationSuffix", op, p.Pattern)
			}
		}
	}
}
