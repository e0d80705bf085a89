package bankauth

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// status/<config> and the metrics show when a key's certificate expires and
// how old its signing version is.
func TestKeyExpiryInStatusAndMetrics(t *testing.T) {
	e := newTestEnv(t)
	now := time.Now().UTC().Truncate(time.Second)
	e.b.keys.now = func() time.Time { return now }
	e.mustOK(t, logical.CreateOperation, "key/qwac", map[string]any{"type": "ec-p256", "purpose": "tls"})
	csr := e.mustOK(t, logical.UpdateOperation, "key/qwac/csr", map[string]any{"common_name": "tpp"}).Data["csr"].(string)
	notAfter := now.Add(10 * 24 * time.Hour)
	leaf, ca := issueForCSR(t, csr, notAfter)
	e.mustOK(t, logical.UpdateOperation, "key/qwac/certificate", map[string]any{"certificate": leaf + ca})
	e.mustOK(t, logical.CreateOperation, "config/ob", map[string]any{"provider": "oauth2",
		"token_url": "https://as.bank.example/token", "client_id": "c", "client_secret": "s", "tls_key": "qwac"})

	now = now.Add(36 * time.Hour)
	st := e.mustOK(t, logical.ReadOperation, "status/ob", nil).Data["keys"].(map[string]any)["tls_key"].(map[string]any)
	if st["key"] != "qwac" || st["certificate_not_after"] != notAfter.Format(time.RFC3339) ||
		st["key_age_seconds"] != int64(36*3600) || st["certificate_expires_in_seconds"] != int64(notAfter.Sub(now)/time.Second) ||
		st["latest_version"] != 1 {
		t.Errorf("status keys %v", st)
	}

	body := string(e.mustOK(t, logical.ReadOperation, "metrics", nil).Data[logical.HTTPRawBody].([]byte))
	want := fmt.Sprintf(`bankauth_key_certificate_expiry_timestamp_seconds{key="qwac"} %s`, sci(notAfter.Unix()))
	if !strings.Contains(body, want) || !strings.Contains(body, `bankauth_key_latest_version_created_timestamp_seconds{key="qwac"}`) {
		t.Errorf("metrics lack %q:\n%s", want, grepLines(body, "bankauth_key_"))
	}
}

// sci formats a Unix time the way the Prometheus text format prints a float
// (the shortest form: 1.7968532e+09, not 1.796853200e+09).
func sci(v int64) string {
	return strconv.FormatFloat(float64(v), 'g', -1, 64)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
