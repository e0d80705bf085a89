package emulator

// ConfigData returns the bankauth config fields (as written to
// bankauth/config/<name>) that make provider talk to an emulator at baseURL
// with creds.
func ConfigData(provider, baseURL string, creds Credentials) map[string]any {
	d := map[string]any{"provider": provider, "base_url": baseURL}
	switch provider {
	case Isbank:
		d["client_id"], d["client_secret"] = creds.ClientID, creds.ClientSecret
		d["service_account_id"], d["service_account_secret"] = creds.ServiceAccountID, creds.ServiceAccountSecret
	case Etranzact:
		d["username"], d["password"] = creds.Username, creds.Password
	case Rakbank:
		d["client_id"], d["client_secret"] = creds.ClientID, creds.ClientSecret
		d["scope"] = "accounts"
	case AccelerationCloud:
		d["client_id"], d["client_secret"] = creds.ClientID, creds.ClientSecret
		d["user_id"] = "user-42"
	}
	return d
}

// Secrets lists creds' secret values, for tests that check none leaks.
func (c Credentials) Secrets() []string {
	return []string{c.ClientSecret, c.ServiceAccountSecret, c.Password}
}
