package bank

import (
	"embed"
	"fmt"
	"path"
	"strings"
)

// builtinProfiles are the seed banks' protocols, one profile file each, in
// the same format operators use for their own (bankauth/profile/<name>).
//
//go:embed profiles/*.json
var builtinProfiles embed.FS

func init() {
	files, err := builtinProfiles.ReadDir("profiles")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(f.Name(), ".json")
		p, err := BuiltinProfile(name)
		if err != nil {
			panic(fmt.Sprintf("built-in profile %s: %v", name, err))
		}
		pp, err := NewProfileProvider(name, p)
		if err != nil {
			panic(fmt.Sprintf("built-in profile %s: %v", name, err))
		}
		register(pp)
	}
}

// BuiltinProfile returns a fresh copy of the built-in profile name, parsed
// from its embedded file.
func BuiltinProfile(name string) (*Profile, error) {
	data, err := builtinProfiles.ReadFile(path.Join("profiles", name+".json"))
	if err != nil {
		return nil, fmt.Errorf("no built-in profile %q", name)
	}
	return ParseProfile(data)
}
