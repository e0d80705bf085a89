package bank

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	uuid "github.com/hashicorp/go-uuid"
)

// Template references: {{field.<name>}}, {{step.<step>.<value>}},
// {{token.refresh_token}} (refresh steps), {{gen.uuid}}, {{gen.unix}},
// {{gen.unix_ms}}, {{gen.rfc3339}}. Generated values are made once per
// request: two {{gen.uuid}} in one step are the same UUID.
var generators = map[string]bool{"uuid": true, "unix": true, "unix_ms": true, "rfc3339": true}

// templateScope is what a template may refer to at one point of a profile.
type templateScope struct {
	fields  map[string]ProfileField
	steps   map[string]map[string]bool
	refresh bool
}

// parseTemplate splits text into literal and reference parts; refs are at
// odd indexes.
func parseTemplate(text string) ([]string, error) {
	var parts []string
	for {
		i := strings.Index(text, "{{")
		if i < 0 {
			if strings.Contains(text, "}}") {
				return nil, fmt.Errorf("unmatched }}")
			}
			return append(parts, text), nil
		}
		j := strings.Index(text[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("unclosed {{")
		}
		if strings.Contains(text[:i], "}}") {
			return nil, fmt.Errorf("unmatched }}")
		}
		parts = append(parts, text[:i], strings.TrimSpace(text[i+2:i+j]))
		text = text[i+j+2:]
	}
}

// check validates every reference in text.
func (s templateScope) check(where, text string) error {
	parts, err := parseTemplate(text)
	if err != nil {
		return profileErr(where, "%s", err.Error())
	}
	for i := 1; i < len(parts); i += 2 {
		ref := parts[i]
		ns, rest, _ := strings.Cut(ref, ".")
		switch ns {
		case "field":
			if _, ok := s.fields[rest]; !ok {
				return profileErr(where, "a {{…}} reference names a field the profile does not declare")
			}
		case "step":
			step, value, _ := strings.Cut(rest, ".")
			vals, ok := s.steps[step]
			if !ok {
				return profileErr(where, "a {{…}} reference names a step that does not run before this one")
			}
			if !vals[value] {
				return profileErr(where, "a {{…}} reference names a value its step does not extract")
			}
		case "token":
			if rest != "refresh_token" {
				return profileErr(where, "a {{token.…}} reference: the only token value is token.refresh_token")
			}
			if !s.refresh {
				return profileErr(where, "{{token.refresh_token}} is available in refresh steps only")
			}
		case "gen":
			if !generators[rest] {
				return profileErr(where, "a {{gen.…}} reference names no generator (gen.uuid, gen.unix, gen.unix_ms, gen.rfc3339)")
			}
		default:
			return profileErr(where, "a {{…}} reference is none of field., step., token. or gen.")
		}
	}
	return nil
}

// renderContext holds the values one request's templates draw on.
type renderContext struct {
	cfg          *Config
	steps        map[string]map[string]string
	refreshToken string
	now          time.Time
	uuid         string
	// sensitive collects rendered texts that hold a secret field, a
	// value carried from an earlier step or the refresh token: a bank
	// that echoes them must not get them into errors.
	sensitive []string
}

// secretRef reports whether a reference resolves to a secret value.
func (rc *renderContext) secretRef(ref string) bool {
	ns, rest, _ := strings.Cut(ref, ".")
	switch ns {
	case "step", "token":
		return true
	case "field":
		if p, ok := rc.cfg.Lookup(); ok {
			for _, f := range p.Fields() {
				if f.Name == rest {
					return f.Secret
				}
			}
		}
	}
	return false
}

// value resolves one reference.
func (rc *renderContext) value(ref string) (string, error) {
	ns, rest, _ := strings.Cut(ref, ".")
	switch ns {
	case "field":
		if rest == FieldOAuthMetadata {
			if rc.cfg.OAuthMetadata == nil {
				return "", nil
			}
			b, err := json.Marshal(rc.cfg.OAuthMetadata)
			return string(b), err
		}
		return rc.cfg.Value(rest), nil
	case "step":
		step, value, _ := strings.Cut(rest, ".")
		return rc.steps[step][value], nil
	case "token":
		return rc.refreshToken, nil
	case "gen":
		switch rest {
		case "uuid":
			if rc.uuid == "" {
				id, err := uuid.GenerateUUID()
				if err != nil {
					return "", fmt.Errorf("cannot generate a UUID: %w", err)
				}
				rc.uuid = id
			}
			return rc.uuid, nil
		case "unix":
			return strconv.FormatInt(rc.now.Unix(), 10), nil
		case "unix_ms":
			return strconv.FormatInt(rc.now.UnixMilli(), 10), nil
		case "rfc3339":
			return rc.now.UTC().Format(time.RFC3339), nil
		}
	}
	return "", fmt.Errorf("unknown reference {{%s}}", ref)
}

// render fills in text; escape (may be nil) is applied to each value.
func (rc *renderContext) render(text string, escape func(string) string) (string, error) {
	parts, err := parseTemplate(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	secret := false
	for i, p := range parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		v, err := rc.value(p)
		if err != nil {
			return "", err
		}
		if rc.secretRef(p) {
			secret = true
			rc.sensitive = append(rc.sensitive, v)
		}
		if escape != nil {
			v = escape(v)
		}
		b.WriteString(v)
	}
	if secret {
		rc.sensitive = append(rc.sensitive, b.String())
	}
	return b.String(), nil
}

// singleRef returns the reference when text is exactly one "{{ref}}".
func singleRef(text string) (string, bool) {
	parts, err := parseTemplate(text)
	if err != nil || len(parts) != 3 || parts[0] != "" || parts[2] != "" {
		return "", false
	}
	return parts[1], true
}
