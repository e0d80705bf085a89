package bankauth

import (
	"fmt"
	"time"

	"github.com/bankauth/vault-plugin-secrets-bankauth/engine"
	"github.com/hashicorp/vault/sdk/framework"
)

// lifecycleFields are the config fields for token lifetime, background
// refresh and the bank's request budget, common to every provider.
func lifecycleFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		engine.FieldDefaultLifetime: {Type: framework.TypeDurationSecond,
			Description: "Lifetime assumed for a token whose answer has neither expires_in nor a JWT exp claim. Default 0: such an answer is an error."},
		engine.FieldBackgroundRefreshIdle: {Type: framework.TypeDurationSecond,
			Description: fmt.Sprintf("Keep renewing a token in the background before it turns stale while it was read within this long. Default %s; 0 turns background refresh off.", engine.DefaultBackgroundRefreshIdle)},
		engine.FieldMaxRequestsPerMinute: {Type: framework.TypeInt,
			Description: "Most bank requests (retries included) in any 60 seconds; 0 means no limit. Default: the provider's published budget (accelerationcloud 10), else no limit."},
		engine.FieldMaxRequestsPerDay: {Type: framework.TypeInt,
			Description: "Most bank requests (retries included) in any 24 hours; 0 means no limit. Default: the provider's published budget (accelerationcloud 60), else no limit."},
	}
}

// mergeLifecycle applies a lifecycle field from the request; false if key is
// not one.
func mergeLifecycle(l *engine.Lifecycle, key string, d *framework.FieldData) bool {
	switch key {
	case engine.FieldDefaultLifetime:
		l.DefaultLifetime = time.Duration(d.Get(key).(int)) * time.Second
	case engine.FieldBackgroundRefreshIdle:
		v := time.Duration(d.Get(key).(int)) * time.Second
		l.BackgroundRefreshIdle = &v
	case engine.FieldMaxRequestsPerMinute:
		v := d.Get(key).(int)
		l.MaxRequestsPerMinute = &v
	case engine.FieldMaxRequestsPerDay:
		v := d.Get(key).(int)
		l.MaxRequestsPerDay = &v
	default:
		return false
	}
	return true
}

// lifecycleData is what a config read shows of the lifecycle settings: the
// values in effect, defaults included.
func lifecycleData(cfg *engine.Config) map[string]any {
	limits := cfg.EffectiveLimits()
	return map[string]any{
		engine.FieldDefaultLifetime:       int64(cfg.DefaultLifetime / time.Second),
		engine.FieldBackgroundRefreshIdle: int64(cfg.EffectiveBackgroundRefreshIdle() / time.Second),
		engine.FieldMaxRequestsPerMinute:  limits.PerMinute,
		engine.FieldMaxRequestsPerDay:     limits.PerDay,
	}
}
