package bankauth

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/bank"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus"
)

// keyStatus describes, for status/<config>, each key the config names: its
// kid, latest version and age, and the attached certificate's expiry (an
// expired QWAC is an outage, so it should be seen coming).
func keyStatus(ctx context.Context, s logical.Storage, cfg *bank.Config, now time.Time) (map[string]any, error) {
	out := map[string]any{}
	refused := keyRefusal(ctx, s, cfg)
	for _, f := range keyFields {
		name := cfg.Settings[f]
		if name == "" {
			continue
		}
		k, err := readKey(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if k == nil {
			out[f] = map[string]any{"key": name, "missing": true}
			continue
		}
		latest := k.Latest()
		st := map[string]any{
			"key":                       name,
			"kid":                       latest.KID,
			"latest_version":            k.LatestVersion(),
			"latest_version_created_at": latest.CreatedAt.Format(time.RFC3339),
			"key_age_seconds":           int64(now.Sub(latest.CreatedAt) / time.Second),
			"certificate_not_after":     nil,
		}
		if c := k.Certificate.Summary(); c != nil {
			st["certificate_not_after"] = c.NotAfter.Format(time.RFC3339)
			st["certificate_expires_in_seconds"] = int64(c.NotAfter.Sub(now) / time.Second)
		}
		st["purpose"] = nonNil(k.Purposes)
		if refused != nil && refused.Field == f {
			st["error"] = refused.Message
		}
		out[f] = st
	}
	return out, nil
}

// keyRefusal is why the config's keys refuse it (a purpose it lacks, an
// endpoint or audience outside a key's pins, set after the config was
// written), or nil: its fetches fail with the same message.
func keyRefusal(ctx context.Context, s logical.Storage, cfg *bank.Config) *bank.FieldError {
	if attachProfile(ctx, s, cfg) != nil {
		return nil
	}
	var fe *bank.FieldError
	if err := cfg.Validate(); errors.As(err, &fe) && slices.Contains(keyFields, fe.Field) {
		return fe
	}
	return nil
}

// keyCollector exports, at scrape time, each key's attached certificate
// expiry and its latest version's creation time, read from storage.
type keyCollector struct{ b *backend }

var (
	descCertExpiry = prometheus.NewDesc("bankauth_key_certificate_expiry_timestamp_seconds",
		"When the certificate attached to a key (key/<name>/certificate) stops being valid (not_after), Unix seconds.",
		[]string{"key"}, nil)
	descKeyCreated = prometheus.NewDesc("bankauth_key_latest_version_created_timestamp_seconds",
		"When a key's latest (signing) version was created, Unix seconds.", []string{"key"}, nil)
)

func (keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCertExpiry
	ch <- descKeyCreated
}

func (c keyCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.storage
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names, err := s.List(ctx, keyPrefix)
	if err != nil {
		return
	}
	for _, n := range names {
		k, err := loadKey(ctx, s, n) // as stored: only its versions and certificate are exported
		if err != nil || k == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descKeyCreated, prometheus.GaugeValue, float64(k.Latest().CreatedAt.Unix()), n)
		if sum := k.Certificate.Summary(); sum != nil {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(sum.NotAfter.Unix()), n)
		}
	}
}
