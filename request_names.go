package bankauth

import (
	"regexp"
	"sort"
	"strings"
)

// The naming rule holds for every name in every path (config, token,
// profile, status, key, jwks, sign, dpop): checked before storage is
// touched, so no name reaches storage that storage would refuse.

// maxNameLen is the longest name a new object may have. Names stored by an
// earlier release, which had no limit, stay readable, updatable and
// deletable: the limit applies to creation only.
const maxNameLen = 128

// nameRule is the naming rule in words, for error messages.
const nameRule = "1 to 128 letters, digits, '_', '-' or '.', starting and ending with a letter, digit or '_', with no '..'"

// nameChars matches the characters and ends the rule allows (the same
// characters the framework's GenericNameRegex routes).
var nameChars = regexp.MustCompile(`^\w([\w.-]*\w)?$`)

// nameProblem checks every name captured from a request path and returns
// a message naming the first that breaks the rule, or "". creating applies
// the length limit. An optional capture that matched nothing is no name.
func nameProblem(captures map[string]string, creating bool) string {
	fields := make([]string, 0, len(captures))
	for k := range captures {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	for _, f := range fields {
		if n := captures[f]; n != "" && !validName(n, creating) {
			return "invalid " + f + ": a name is " + nameRule
		}
	}
	return ""
}

// validName reports whether name follows the naming rule; the length limit
// only when creating.
func validName(name string, creating bool) bool {
	if creating && len(name) > maxNameLen {
		return false
	}
	return nameChars.MatchString(name) && !strings.Contains(name, "..")
}
