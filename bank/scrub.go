package bank

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// A bank that echoes a request back (in an error body, say) must not get a
// secret into errors, status, warnings or logs in any of the forms in which
// the secret left the plugin: raw, form- or URL-escaped, JSON-escaped,
// inside base64 Basic credentials (raw or RFC 6749 form-encoded first), as
// a signed client assertion, or as a header value rendered from it.

// secretForms lists the encodings in which v may come back in a bank's
// text: as sent (raw, form-, path- or JSON-escaped; JSON writers that
// escape "/" as "\/" too).
func secretForms(v string) []string {
	if len(v) < 4 {
		return nil
	}
	j, _ := json.Marshal(v)
	js := string(j[1 : len(j)-1])
	return []string{v, url.QueryEscape(v), url.PathEscape(v), js, strings.ReplaceAll(js, "/", `\/`)}
}

// basicForms lists the base64 Basic credentials of user and pass in every
// alphabet and padding a bank could echo them in, and those escaped.
func basicForms(user, pass string) []string {
	cred := []byte(user + ":" + pass)
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		out = append(out, secretForms(enc.EncodeToString(cred))...)
	}
	return out
}

// expandSecrets is every form of every value, longest first (so a form
// that holds another is replaced whole), without duplicates.
func expandSecrets(values []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range values {
		for _, f := range secretForms(v) {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// sentSecrets collects, during one Fetch, what left the plugin that is
// secret but not a config value as stored: Basic credentials, rendered
// headers, signed assertions, values carried between steps.
type sentSecrets struct {
	mu     sync.Mutex
	values []string
}

type sentSecretsKey struct{}

// withSentSecrets gives a fetch its collector.
func withSentSecrets(ctx context.Context) (context.Context, *sentSecrets) {
	s := &sentSecrets{}
	return context.WithValue(ctx, sentSecretsKey{}, s), s
}

// noteSent records secret values sent in ctx's fetch (no-op outside one).
func noteSent(ctx context.Context, values ...string) {
	if s, ok := ctx.Value(sentSecretsKey{}).(*sentSecrets); ok {
		s.mu.Lock()
		s.values = append(s.values, values...)
		s.mu.Unlock()
	}
}

func (s *sentSecrets) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.values...)
}
