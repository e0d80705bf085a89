package keyring

// Uses is what a key's owner allows it for: its purposes and, for client
// assertions, where they may be sent and for which audiences. The plugin
// decides what the values mean (package bank); a key stored by a release
// before purposes existed has nil Purposes.
type Uses struct {
	Purposes         []string `json:"purposes,omitempty"`
	AllowedEndpoints []string `json:"allowed_endpoints,omitempty"`
	AllowedAudiences []string `json:"allowed_audiences,omitempty"`
}

// Has reports whether purpose is among the key's purposes.
func (u Uses) Has(purpose string) bool {
	for _, p := range u.Purposes {
		if p == purpose {
			return true
		}
	}
	return false
}
