package bank

// UseProvider makes p, a provider that is not built in (an operator's
// profile), the config's provider. The backend attaches it after reading a
// config whose provider names a stored profile.
func (c *Config) UseProvider(p Provider) { c.custom = p }

// Lookup is the config's provider: the attached one, else a built-in.
func (c *Config) Lookup() (Provider, bool) {
	if c.custom != nil && c.custom.Name() == c.Provider {
		return c.custom, true
	}
	return Lookup(c.Provider)
}
