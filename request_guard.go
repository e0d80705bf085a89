package bankauth

import (
	"errors"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The last line of defence around every request: a handler panic must not
// take down the plugin process (and every mount it serves), and an answer
// must not quote a secret the caller sent, whatever a handler did.

// errInternal is what a caller sees of a recovered panic: nothing of the
// request, which Vault answers with 500.
var errInternal = errors.New("internal error: the plugin could not handle this request (its log has the details)")

// recoverPanic, deferred, turns a panic into errInternal, logs where it
// happened without request data (the panic value only when the runtime
// made it, the stack without argument values) and counts it.
func (b *backend) recoverPanic(where string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	b.metrics.panics.Inc()
	what := "a panic"
	if re, ok := r.(runtime.Error); ok {
		what = re.Error()
	}
	b.Logger().Error("recovered from a panic: the request was answered 500", "in", where, "panic", what,
		"stack", stackWithoutArgs(debug.Stack()))
	*err = errInternal
}

// stackWithoutArgs drops the argument values from a stack trace's frame
// lines (func(0xc000123, {0x4b12, 0x3})): they may be parts of a
// request's values.
func stackWithoutArgs(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "\t") || !strings.HasSuffix(l, ")") {
			continue
		}
		depth := 0
		for j := len(l) - 1; j >= 0; j-- {
			switch l[j] {
			case ')':
				depth++
			case '(':
				depth--
			}
			if depth == 0 {
				lines[i] = l[:j] + "(...)"
				break
			}
		}
	}
	return strings.Join(lines, "\n")
}

// minRedacted is the shortest caller value redacted from answers: shorter
// ones would blank out ordinary words of the message.
const minRedacted = 4

// redactEchoes removes from an error answer, its warnings and a returned
// error every string the caller sent in a sensitive field or, on config/,
// in a field the schema does not declare (a profile's own fields, which may
// be secrets): a handler's message should never quote them, and this makes
// sure none does. A coded error keeps its status.
func redactEchoes(p *framework.Path, data map[string]any, resp *logical.Response, err error) (*logical.Response, error) {
	// Only config/<name> takes fields its schema does not declare (a
	// profile's own fields): elsewhere the framework drops them unread.
	undeclaredRead := strings.HasPrefix(p.Pattern, "^"+configPrefix) || strings.HasPrefix(p.Pattern, configPrefix)
	if (resp == nil || (!resp.IsError() && len(resp.Warnings) == 0)) && err == nil {
		return resp, err
	}
	var secrets []string
	for k, v := range data {
		f, declared := p.Fields[k]
		if (declared && (f.DisplayAttrs == nil || !f.DisplayAttrs.Sensitive)) || (!declared && !undeclaredRead) {
			continue
		}
		secrets = appendStrings(secrets, v)
	}
	// Messages name fields: a value that is part of a field name the caller
	// sent is no secret to hide, and hiding it would unname the field.
	secrets = slices.DeleteFunc(secrets, func(v string) bool {
		for k := range data {
			if strings.Contains(k, v) {
				return true
			}
		}
		return false
	})
	if len(secrets) == 0 {
		return resp, err
	}
	if resp != nil {
		if msg, ok := resp.Data["error"].(string); ok && resp.IsError() {
			resp.Data["error"] = redact(msg, secrets)
		}
		for i, w := range resp.Warnings {
			resp.Warnings[i] = redact(w, secrets)
		}
	}
	if err != nil {
		if msg := redact(err.Error(), secrets); msg != err.Error() {
			var coded logical.HTTPCodedError
			if errors.As(err, &coded) {
				err = logical.CodedError(coded.Code(), msg) // keep the status Vault answers with
			} else {
				err = errors.New(msg)
			}
		}
	}
	return resp, err
}

// appendStrings adds every string in v (nested lists and objects included)
// long enough to redact: minRedacted characters besides leading and
// trailing white space (a space and one character would blank out the
// space before a field's name).
func appendStrings(out []string, v any) []string {
	switch t := v.(type) {
	case string:
		if utf8.RuneCountInString(strings.TrimSpace(t)) >= minRedacted {
			out = append(out, t)
		}
	case []any:
		for _, e := range t {
			out = appendStrings(out, e)
		}
	case map[string]any:
		for _, e := range t {
			out = appendStrings(out, e)
		}
	}
	return out
}

// redact replaces each secret in msg, as sent and as Go or JSON would quote
// it, with [redacted].
func redact(msg string, secrets []string) string {
	for _, s := range secrets {
		quoted := strconv.Quote(s)
		for _, form := range []string{s, quoted[1 : len(quoted)-1]} {
			if form != "" {
				msg = strings.ReplaceAll(msg, form, "[redacted]")
			}
		}
	}
	return msg
}
