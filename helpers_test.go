package bankauth

import (
	"encoding/json"
)

// stringify renders response data canonically, for comparisons and scans.
func stringify(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
