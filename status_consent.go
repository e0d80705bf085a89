package bankauth

import "github.com/hashicorp/vault/sdk/framework"

// consentStatusData is what status/<config> shows of an authorization_code
// config's consents: the census counts (null until a census walk reached
// the config on this node) and this node's refresh failure counters. Never
// a consent id or a secret.
func (b *backend) consentStatusData(config string) map[string]any {
	data := map[string]any{"consents": nil, "consents_total": nil, "consents_expiring_7d": nil, "consent_census_at": nil}
	if cc, ok := b.census.get(config); ok {
		data["consents"] = cc.byState()
		data["consents_total"] = cc.total()
		data["consents_expiring_7d"] = cc.Expiring7d
		data["consent_census_at"] = rfc3339(cc.At)
	}
	st, _ := b.consentStats.get(config)
	data["consent_refresh_failures"] = st.Failures
	data["consent_revocations"] = st.Revocations
	return data
}

// consentStatusRow adds to a status/ list row (vault list -detailed) what
// memory holds of the config's consents: consents (the census total) and
// consent_refresh_failures (all reasons), for consent configs only.
func (b *backend) consentStatusRow(config string, row map[string]any) {
	if cc, ok := b.census.get(config); ok {
		row["consents"] = cc.total()
	}
	if st, ok := b.consentStats.get(config); ok {
		var n uint64
		for _, v := range st.Failures {
			n += v
		}
		row["consent_refresh_failures"] = n
	}
}

// consentStatusFields documents consentStatusData's fields.
func consentStatusFields(f func(framework.FieldType, string) *framework.FieldSchema) map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"consents":                 f(framework.TypeMap, "Consent configs: consents stored per state (pending, authorized, denied, expired, revoked) at consent_census_at; null before the first census walk on this node."),
		"consents_total":           f(framework.TypeInt, "Consent configs: consents stored at consent_census_at."),
		"consents_expiring_7d":     f(framework.TypeInt, "Consent configs: authorized consents whose consent_expires_at is within 7 days of consent_census_at."),
		"consent_census_at":        f(framework.TypeString, "Consent configs: when the background census last finished counting this config's consents (active node; every 15 minutes)."),
		"consent_refresh_failures": f(framework.TypeMap, "Consent configs: consent token refreshes failed, by reason (this node, since plugin start)."),
		"consent_revocations":      f(framework.TypeInt, "Consent configs: consents the bank revoked (invalid_grant on a refresh; this node, since plugin start)."),
	}
}
