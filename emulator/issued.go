package emulator

// IssuedSecrets lists, for provider, every access token issued since the
// last Reset and the refresh tokens and İşbank authorization codes still
// outstanding (used ones are forgotten: call it after each step to collect
// them all). Log-scanning tests look for each of these in logs. For FAPI
// they are the authorization server's outstanding request URIs, codes
// (used ones too, until they expire) and tokens.
func (s *Server) IssuedSecrets(provider string) []string {
	if provider == FAPI {
		return s.fapiSecrets()
	}
	var out []string
	s.with(provider, func(st *providerState) {
		for k := range st.access {
			out = append(out, k)
		}
		for k := range st.refresh {
			out = append(out, k)
		}
		for k := range st.codes {
			out = append(out, k)
		}
	})
	return out
}
