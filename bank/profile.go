package bank

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Profile describes a bank's token protocol as data: the config fields it
// needs, the HTTP requests (steps) that obtain a token, where the token and
// its lifetime are in the last answer, how errors read, and the refresh
// request. Values are filled in by templates ({{field.client_id}},
// {{step.code.code}}, {{token.refresh_token}}, {{gen.uuid}}); there is no
// scripting.
type Profile struct {
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// BaseURL is the bank's public endpoint; "" means base_url is required.
	BaseURL string         `json:"base_url,omitempty"`
	Fields  []ProfileField `json:"fields"`
	// Steps run in order; the last one's answer holds the token.
	Steps []Step `json:"steps"`
	// Token says where the token is in the last answer.
	Token TokenMapping `json:"token,omitempty"`
	// Errors names the bank's error code and message fields; default: the
	// usual OAuth, IBM API Connect and bank keys.
	Errors *ErrorMapping `json:"errors,omitempty"`
	// Refresh, when set, runs instead of Steps while the current token has a
	// usable refresh token.
	Refresh *Refresh `json:"refresh,omitempty"`
	// Limits is the bank's published request budget; a config's
	// max_requests_per_minute/day override it.
	Limits *ProfileLimits `json:"limits,omitempty"`
}

// ProfileLimits is a request budget: at most PerMinute requests in any
// 60 s and PerDay in any 24 h (0: no limit).
type ProfileLimits struct {
	PerMinute int `json:"per_minute,omitempty"`
	PerDay    int `json:"per_day,omitempty"`
}

// ProfileField is one config field a profile declares.
type ProfileField struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Secret      bool   `json:"secret,omitempty"`
	Default     string `json:"default,omitempty"`
	// Type is "string" (default) or "json" (a JSON object, inserted into a
	// JSON body as an object; only oauth_metadata for now).
	Type string `json:"type,omitempty"`
}

// Step is one HTTP request.
type Step struct {
	// Name appears in errors ("<provider> <name> request failed") and in
	// templates of later steps ({{step.<name>.<value>}}).
	Name   string `json:"name"`
	Method string `json:"method"`
	// Path is appended to the base URL; URL is an absolute URL instead
	// (e.g. "{{field.token_url}}"). Exactly one is set.
	Path    string         `json:"path,omitempty"`
	URL     string         `json:"url,omitempty"`
	Query   OrderedStrings `json:"query,omitempty"`
	Headers OrderedStrings `json:"headers,omitempty"`
	Basic   *BasicAuth     `json:"basic_auth,omitempty"`
	// Assertion adds an RFC 7523 client assertion (private_key_jwt) to the
	// step's form body.
	Assertion *ClientAssertion `json:"client_assertion,omitempty"`
	Body      *Body            `json:"body,omitempty"`
	Success   *Success         `json:"success,omitempty"`
	// Extract names values of this step's answer (JSON paths) for later
	// steps; each must be present.
	Extract map[string]string `json:"extract,omitempty"`
}

// BasicAuth is HTTP Basic authentication.
type BasicAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Encoding is "raw" (default: as given) or "rfc6749" (form-encoded
	// before base64, RFC 6749 section 2.3.1).
	Encoding string `json:"encoding,omitempty"`
}

// ClientAssertion is RFC 7523 client authentication: the form gets
// client_assertion_type and a JWT signed with PrivateKey, with iss = sub =
// ClientID, aud = Audience, a fresh jti and exp 5 minutes on. All are
// templates.
type ClientAssertion struct {
	ClientID   string `json:"client_id"`
	PrivateKey string `json:"private_key"` // usually "{{field.private_key}}", a secret field
	KeyID      string `json:"key_id,omitempty"`
	// Alg is RS256, PS256 or ES256; default RS256 for RSA keys, ES256 for EC.
	Alg string `json:"alg,omitempty"`
	// Audience defaults to the step's URL without its query.
	Audience string `json:"audience,omitempty"`
}

// Body is a request body.
type Body struct {
	// Type is "form", "json" or "none".
	Type string `json:"type"`
	// Fields are sent in the order given. A string is a template; a value
	// that renders empty is left out. In a JSON body other JSON values are
	// sent as they are, and "{{field.x}}" of a json field is an object.
	Fields OrderedValues `json:"fields,omitempty"`
	// ContentType overrides the default Content-Type header.
	ContentType string `json:"content_type,omitempty"`
}

// Success says which answers count as success: a status in Status
// ("200", "2xx"; default "200") and, when Require is set, a body where
// that path holds a value (not null, false or "").
type Success struct {
	Status  []string `json:"status,omitempty"`
	Require string   `json:"require,omitempty"`
}

// TokenMapping says where the token's parts are in the last answer. Paths
// are dotted JSON paths ("data.access_token", "result.0.token"); a list
// means the first path present wins.
type TokenMapping struct {
	AccessToken  Paths `json:"access_token,omitempty"`  // default access_token
	TokenType    Paths `json:"token_type,omitempty"`    // default token_type; "bearer" when absent
	Scope        Paths `json:"scope,omitempty"`         // default scope
	RefreshToken Paths `json:"refresh_token,omitempty"` // default refresh_token, refreshToken
	// ExpiresIn is a lifetime (default path expires_in, unit s);
	// ExpiresAt an absolute time. ExpiresAt is tried first when both are set.
	ExpiresIn        *Duration `json:"expires_in,omitempty"`
	ExpiresAt        *Instant  `json:"expires_at,omitempty"`
	RefreshExpiresIn *Duration `json:"refresh_expires_in,omitempty"` // default refresh_expires_in, refresh_token_expires_in
	// NoJWTFallback turns off reading the access token's JWT exp claim
	// when the answer gives no lifetime.
	NoJWTFallback bool `json:"no_jwt_exp_fallback,omitempty"`
}

// Duration is a lifetime in the answer.
type Duration struct {
	Path Paths  `json:"path"`
	Unit string `json:"unit,omitempty"` // "s" (default) or "ms"
	// AcceptString also accepts a number in a JSON string ("3599").
	AcceptString bool `json:"accept_string,omitempty"`
}

// Instant is an absolute time in the answer.
type Instant struct {
	Path   Paths  `json:"path"`
	Format string `json:"format"` // "unix", "unix_ms" or "rfc3339"
}

// ErrorMapping names the bank's error fields (JSON paths).
type ErrorMapping struct {
	Code    Paths `json:"code,omitempty"`
	Message Paths `json:"message,omitempty"`
	Detail  Paths `json:"detail,omitempty"`
}

// Refresh is the refresh request.
type Refresh struct {
	Steps []Step `json:"steps"`
	// OnRejected is "login" (default: when the bank refuses the refresh
	// token, run Steps once) or "fail".
	OnRejected string `json:"on_rejected,omitempty"`
}

// Paths is one JSON path or a list of them; it reads either from JSON.
type Paths []string

// UnmarshalJSON accepts "a.b" or ["a.b","c"].
func (p *Paths) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*p = Paths{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("must be a JSON path or a list of them")
	}
	*p = many
	return nil
}

// OrderedStrings is a JSON object of strings that keeps its key order.
type OrderedStrings []KV[string]

// OrderedValues is a JSON object that keeps its key order.
type OrderedValues []KV[json.RawMessage]

// KV is one key and value.
type KV[V any] struct {
	Key   string
	Value V
}

// UnmarshalJSON reads a JSON object of strings in order.
func (o *OrderedStrings) UnmarshalJSON(b []byte) error {
	var raw OrderedValues
	if err := raw.UnmarshalJSON(b); err != nil {
		return err
	}
	*o = nil
	for _, kv := range raw {
		var s string
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			return fmt.Errorf("%s: must be a string", kv.Key)
		}
		*o = append(*o, KV[string]{kv.Key, s})
	}
	return nil
}

// MarshalJSON writes the object in order.
func (o OrderedStrings) MarshalJSON() ([]byte, error) {
	vals := make(OrderedValues, 0, len(o))
	for _, kv := range o {
		v, _ := json.Marshal(kv.Value)
		vals = append(vals, KV[json.RawMessage]{kv.Key, v})
	}
	return vals.MarshalJSON()
}

// UnmarshalJSON reads a JSON object in order; duplicate keys are refused.
func (o *OrderedValues) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("must be a JSON object")
	}
	*o = nil
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key := t.(string)
		if seen[key] {
			return fmt.Errorf("a key appears twice")
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*o = append(*o, KV[json.RawMessage]{key, v})
	}
	_, err := dec.Token()
	return err
}

// MarshalJSON writes the object in order.
func (o OrderedValues) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.Key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(kv.Value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ProfileError is an invalid profile; Where locates the problem
// ("steps[1].headers.MsgId").
type ProfileError struct {
	Where   string
	Message string
}

func (e *ProfileError) Error() string {
	if e.Where == "" {
		return e.Message
	}
	return e.Where + ": " + e.Message
}

func profileErr(where, format string, args ...any) *ProfileError {
	return &ProfileError{Where: where, Message: fmt.Sprintf(format, args...)}
}

var (
	profileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	fieldNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	stepNameRE    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)
	headerNameRE  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// reservedFields are config fields every provider has; a profile cannot
// declare them.
var reservedFields = map[string]bool{
	FieldProvider: true, FieldBaseURL: true, FieldCACert: true, FieldTimeout: true,
	FieldTLSClientCert: true, FieldTLSClientKey: true, "name": true, "cache": true, "lease": true,
	// Common fields other branches add (lifecycle, budget).
	"default_lifetime": true, "background_refresh_idle": true, "max_requests_per_minute": true, "max_requests_per_day": true,
}

// ParseProfile reads a profile from JSON, refusing unknown keys, and
// validates it. The error is a *ProfileError.
func ParseProfile(data []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, profileErr("", "not a valid profile document: %s", err.Error())
	}
	if dec.More() {
		return nil, profileErr("", "not a valid profile document: trailing data after the JSON object")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks a profile: names, methods, URLs, body types, success
// statuses, and that every template refers to a declared field, an
// earlier step's extracted value, the refresh token (refresh steps only)
// or a known generator.
func (p *Profile) Validate() error {
	if p.Name != "" && !profileNameRE.MatchString(p.Name) {
		return profileErr("name", "must be lower-case letters, digits, '-' or '_' (at most 63)")
	}
	if p.BaseURL != "" {
		if err := ValidateBaseURL(p.BaseURL); err != nil {
			return profileErr("base_url", "%s", err.(*FieldError).Message)
		}
	}
	fields := map[string]ProfileField{}
	for i, f := range p.Fields {
		where := fmt.Sprintf("fields[%d]", i)
		switch {
		case !fieldNameRE.MatchString(f.Name):
			return profileErr(where+".name", "must be lower-case letters, digits or '_', starting with a letter")
		case reservedFields[f.Name]:
			return profileErr(where+".name", "is a common config field; profiles cannot declare it")
		case fields[f.Name].Name != "":
			return profileErr(where+".name", "is declared twice")
		case f.Type != "" && f.Type != "string" && f.Type != "json":
			return profileErr(where+".type", "must be string or json")
		case f.Type == "json" && f.Name != FieldOAuthMetadata:
			return profileErr(where+".type", "json is supported only for the oauth_metadata field")
		case f.Name == FieldOAuthMetadata && (f.Type != "json" || f.Secret || f.Default != ""):
			return profileErr(where+".type", "oauth_metadata must be declared with type json, not secret, no default")
		case f.Secret && f.Default != "":
			return profileErr(where+".default", "a secret field cannot have a default")
		}
		fields[f.Name] = f
	}
	if len(p.Steps) == 0 {
		return profileErr("steps", "at least one step is required")
	}
	if err := validateSteps("steps", p.Steps, fields, false); err != nil {
		return err
	}
	if p.Refresh != nil {
		if len(p.Refresh.Steps) == 0 {
			return profileErr("refresh.steps", "at least one step is required")
		}
		if err := validateSteps("refresh.steps", p.Refresh.Steps, fields, true); err != nil {
			return err
		}
		if o := p.Refresh.OnRejected; o != "" && o != "login" && o != "fail" {
			return profileErr("refresh.on_rejected", "must be login or fail")
		}
	}
	if l := p.Limits; l != nil {
		for name, n := range map[string]int{"per_minute": l.PerMinute, "per_day": l.PerDay} {
			if n < 0 || n > MaxRequestLimit {
				return profileErr("limits."+name, "must be between 0 (no limit) and %d", MaxRequestLimit)
			}
			if steps := max(len(p.Steps), len(refreshSteps(p))); n > 0 && n < steps {
				return profileErr("limits."+name, "is %d, but one token takes %d requests: it could never get one", n, steps)
			}
		}
	}
	if err := p.Token.validate(); err != nil {
		return err
	}
	if e := p.Errors; e != nil {
		for name, ps := range map[string]Paths{"code": e.Code, "message": e.Message, "detail": e.Detail} {
			if err := validatePaths("errors."+name, ps); err != nil {
				return err
			}
		}
	}
	return nil
}

var bodyTypes = map[string]bool{"form": true, "json": true, "none": true}

func validateSteps(where string, steps []Step, fields map[string]ProfileField, refresh bool) error {
	extracted := map[string]map[string]bool{}
	for i, s := range steps {
		w := fmt.Sprintf("%s[%d]", where, i)
		scope := templateScope{fields: fields, steps: extracted, refresh: refresh}
		switch {
		case !stepNameRE.MatchString(s.Name):
			return profileErr(w+".name", "must be lower-case letters, digits or '_', starting with a letter")
		case extracted[s.Name] != nil:
			return profileErr(w+".name", "is used twice")
		}
		switch s.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch:
		default:
			return profileErr(w+".method", "must be GET, POST, PUT or PATCH")
		}
		switch {
		case (s.Path == "") == (s.URL == ""):
			return profileErr(w, "set exactly one of path (relative to base_url) and url (absolute)")
		case s.Path != "" && !strings.HasPrefix(s.Path, "/"):
			return profileErr(w+".path", "must start with /")
		case s.Path != "" && strings.ContainsAny(s.Path, "?#"):
			return profileErr(w+".path", "must not hold a query or fragment (use query)")
		}
		if s.URL != "" {
			if err := validateStepURL(w+".url", s.URL); err != nil {
				return err
			}
			if err := checkLiteralURLText(w+".url", s.URL, false); err != nil {
				return err
			}
		} else if err := checkLiteralURLText(w+".path", s.Path, true); err != nil {
			return err
		}
		for _, t := range []struct{ where, text string }{{w + ".path", s.Path}, {w + ".url", s.URL}} {
			if err := scope.check(t.where, t.text); err != nil {
				return err
			}
		}
		for _, kv := range s.Query {
			if err := scope.check(w+".query."+kv.Key, kv.Value); err != nil {
				return err
			}
		}
		for _, kv := range s.Headers {
			if !headerNameRE.MatchString(kv.Key) {
				return profileErr(w+".headers", "has a name that is not a valid header name")
			}
			if strings.EqualFold(kv.Key, "Authorization") && s.Basic != nil {
				return profileErr(w+".headers.Authorization", "conflicts with basic_auth")
			}
			if err := scope.check(w+".headers."+kv.Key, kv.Value); err != nil {
				return err
			}
			if err := checkLiteralHeader(w+".headers."+kv.Key, kv.Value); err != nil {
				return err
			}
		}
		if b := s.Basic; b != nil {
			if b.Encoding != "" && b.Encoding != "raw" && b.Encoding != "rfc6749" {
				return profileErr(w+".basic_auth.encoding", "must be raw or rfc6749")
			}
			if err := scope.check(w+".basic_auth.username", b.Username); err != nil {
				return err
			}
			if err := scope.check(w+".basic_auth.password", b.Password); err != nil {
				return err
			}
		}
		if a := s.Assertion; a != nil {
			if s.Body == nil || s.Body.Type != "form" {
				return profileErr(w+".client_assertion", "needs a body of type form")
			}
			if a.Alg != "" && a.Alg != "RS256" && a.Alg != "PS256" && a.Alg != "ES256" {
				return profileErr(w+".client_assertion.alg", "must be RS256, PS256 or ES256")
			}
			if a.ClientID == "" || a.PrivateKey == "" {
				return profileErr(w+".client_assertion", "client_id and private_key are required")
			}
			for name, text := range map[string]string{"client_id": a.ClientID, "private_key": a.PrivateKey, "key_id": a.KeyID, "audience": a.Audience} {
				if err := scope.check(w+".client_assertion."+name, text); err != nil {
					return err
				}
			}
		}
		if b := s.Body; b != nil {
			if !bodyTypes[b.Type] {
				return profileErr(w+".body.type", "must be form, json or none")
			}
			if b.Type == "none" && len(b.Fields) > 0 {
				return profileErr(w+".body.fields", "a body of type none has no fields")
			}
			for _, kv := range b.Fields {
				var text string
				if err := json.Unmarshal(kv.Value, &text); err != nil {
					if b.Type == "form" {
						return profileErr(w+".body.fields."+kv.Key, "form values must be strings")
					}
					continue
				}
				if err := scope.check(w+".body.fields."+kv.Key, text); err != nil {
					return err
				}
			}
		}
		if sc := s.Success; sc != nil {
			for _, st := range sc.Status {
				if _, _, ok := statusRange(st); !ok {
					return profileErr(w+".success.status", "each must be a status like 200 or a class like 2xx")
				}
			}
			if err := validatePaths(w+".success.require", optionalPath(sc.Require)); err != nil {
				return err
			}
		}
		names := map[string]bool{}
		for name, path := range s.Extract {
			if !fieldNameRE.MatchString(name) {
				return profileErr(w+".extract", "names must be lower-case letters, digits or '_'")
			}
			if err := validatePaths(w+".extract."+name, Paths{path}); err != nil {
				return err
			}
			names[name] = true
		}
		extracted[s.Name] = names
	}
	return nil
}

func optionalPath(p string) Paths {
	if p == "" {
		return nil
	}
	return Paths{p}
}

func validatePaths(where string, ps Paths) error {
	for _, p := range ps {
		if p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
			return profileErr(where, "is not a JSON path like data.access_token")
		}
	}
	return nil
}

func (m *TokenMapping) validate() error {
	for name, ps := range map[string]Paths{"access_token": m.AccessToken, "token_type": m.TokenType, "scope": m.Scope, "refresh_token": m.RefreshToken} {
		if err := validatePaths("token."+name, ps); err != nil {
			return err
		}
	}
	for name, d := range map[string]*Duration{"expires_in": m.ExpiresIn, "refresh_expires_in": m.RefreshExpiresIn} {
		if d == nil {
			continue
		}
		if len(d.Path) == 0 {
			return profileErr("token."+name+".path", "is required")
		}
		if err := validatePaths("token."+name+".path", d.Path); err != nil {
			return err
		}
		if d.Unit != "" && d.Unit != "s" && d.Unit != "ms" {
			return profileErr("token."+name+".unit", "must be s or ms")
		}
	}
	if a := m.ExpiresAt; a != nil {
		if len(a.Path) == 0 {
			return profileErr("token.expires_at.path", "is required")
		}
		if err := validatePaths("token.expires_at.path", a.Path); err != nil {
			return err
		}
		switch a.Format {
		case "unix", "unix_ms", "rfc3339":
		default:
			return profileErr("token.expires_at.format", "must be unix, unix_ms or rfc3339")
		}
	}
	return nil
}

// statusRange reads "200" or "2xx".
func statusRange(s string) (lo, hi int, ok bool) {
	if len(s) != 3 || s[0] < '1' || s[0] > '5' {
		return 0, 0, false
	}
	if s[1:] == "xx" {
		base := int(s[0]-'0') * 100
		return base, base + 99, true
	}
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, 0, false
		}
		n = n*10 + int(r-'0')
	}
	return n, n, true
}
