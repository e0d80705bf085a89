package bankauth

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// consentCollector exports the consent census (consent_census.go) and the
// consent refresh counters (consent_counters.go). Labels are config names,
// states and reasons: never a consent id (one series per consent would
// not scale) and never a secret.
type consentCollector struct{ b *backend }

var (
	descConsents = prometheus.NewDesc("bankauth_consents",
		"Consents stored, by config and state (pending, authorized, denied, expired, revoked), as of the last census walk of the config on this node (the active node).",
		[]string{"config", "state"}, nil)
	descConsentsExpiring = prometheus.NewDesc("bankauth_consents_expiring_7d",
		"Authorized consents whose consent_expires_at falls within 7 days, as of the last census walk of the config.",
		[]string{"config"}, nil)
	descCensusTime = prometheus.NewDesc("bankauth_consent_census_timestamp_seconds",
		"Unix time at which the last whole consent census walk ended on this node (absent before the first, on standbys, and while no consent is stored).",
		nil, nil)
	descConsentFailures = prometheus.NewDesc("bankauth_consent_refresh_failures_total",
		"Consent token refreshes that failed, by config and reason (this node, since plugin start).",
		[]string{"config", "reason"}, nil)
	descConsentRevocations = prometheus.NewDesc("bankauth_consent_revocations_total",
		"Consents the bank revoked: a refresh answered invalid_grant before consent_expires_at (this node, since plugin start).",
		[]string{"config"}, nil)
)

func (consentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConsents, descConsentsExpiring, descCensusTime, descConsentFailures, descConsentRevocations} {
		ch <- d
	}
}

// Collect exports the census counts of every config it found and the
// counters of every config with consents (census) or failures, zeros
// included, so that rate() sees a config's first revocation.
func (c consentCollector) Collect(ch chan<- prometheus.Metric) {
	counts, doneAt := c.b.census.snapshot()
	names := c.b.consentStats.configs()
	for name, cc := range counts {
		if _, ok := c.b.consentStats.get(name); !ok {
			names = append(names, name)
		}
		for i, s := range consentStates {
			ch <- prometheus.MustNewConstMetric(descConsents, prometheus.GaugeValue, float64(cc.States[i]), name, s)
		}
		ch <- prometheus.MustNewConstMetric(descConsentsExpiring, prometheus.GaugeValue, float64(cc.Expiring7d), name)
	}
	if !doneAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(descCensusTime, prometheus.GaugeValue, float64(doneAt.UnixNano())/float64(time.Second))
	}
	sort.Strings(names)
	for _, name := range names {
		st, _ := c.b.consentStats.get(name)
		for _, r := range consentRefreshReasons {
			ch <- prometheus.MustNewConstMetric(descConsentFailures, prometheus.CounterValue, float64(st.Failures[r]), name, r)
		}
		ch <- prometheus.MustNewConstMetric(descConsentRevocations, prometheus.CounterValue, float64(st.Revocations), name)
	}
}
