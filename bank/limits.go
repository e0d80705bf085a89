package bank

import (
	"fmt"
	"time"
)

// Field names of the lifecycle and budget settings, common to every provider.
const (
	FieldDefaultLifetime       = "default_lifetime"
	FieldBackgroundRefreshIdle = "background_refresh_idle"
	FieldMaxRequestsPerMinute  = "max_requests_per_minute"
	FieldMaxRequestsPerDay     = "max_requests_per_day"
)

// DefaultBackgroundRefreshIdle is how long a token keeps being refreshed in
// the background after its last read, unless a config says otherwise.
const DefaultBackgroundRefreshIdle = time.Hour

// MaxRequestLimit bounds the request budget fields (and so the number of
// request times a budget keeps and stores).
const MaxRequestLimit = 10_000

// Lifecycle holds a config's settings for token lifetime, background refresh
// and the bank's request budget. Nil pointers mean "not set": the default
// applies (zero is a meaningful value for them: off / no limit).
type Lifecycle struct {
	// DefaultLifetime is used when a token answer has neither expires_in nor
	// a JWT exp claim; zero keeps such an answer an error.
	DefaultLifetime time.Duration `json:"default_lifetime,omitempty"`
	// BackgroundRefreshIdle: a token is refreshed in the background while it
	// was read within this long; zero turns background refresh off.
	BackgroundRefreshIdle *time.Duration `json:"background_refresh_idle,omitempty"`
	// MaxRequestsPerMinute and MaxRequestsPerDay cap bank requests (every HTTP
	// request, retries included) in any sliding 60 s / 24 h window; zero means
	// no limit.
	MaxRequestsPerMinute *int `json:"max_requests_per_minute,omitempty"`
	MaxRequestsPerDay    *int `json:"max_requests_per_day,omitempty"`
}

// Limits is a request budget: at most PerMinute requests in any 60 s and
// PerDay in any 24 h. Zero means no limit.
type Limits struct {
	PerMinute int
	PerDay    int
}

// None reports whether the budget limits nothing.
func (l Limits) None() bool { return l.PerMinute <= 0 && l.PerDay <= 0 }

// budgeted is implemented by providers whose bank publishes a request budget.
type budgeted interface {
	DefaultLimits() Limits
}

// EffectiveBackgroundRefreshIdle is background_refresh_idle, or its default.
func (c *Config) EffectiveBackgroundRefreshIdle() time.Duration {
	if c.BackgroundRefreshIdle != nil {
		return *c.BackgroundRefreshIdle
	}
	return DefaultBackgroundRefreshIdle
}

// EffectiveLimits is the config's request budget: its own fields where set,
// else the provider's published budget (none for most providers).
func (c *Config) EffectiveLimits() Limits {
	var l Limits
	if p, ok := c.Lookup(); ok {
		if bp, ok := p.(budgeted); ok {
			l = bp.DefaultLimits()
		}
	}
	if c.MaxRequestsPerMinute != nil {
		l.PerMinute = *c.MaxRequestsPerMinute
	}
	if c.MaxRequestsPerDay != nil {
		l.PerDay = *c.MaxRequestsPerDay
	}
	return l
}

func (l *Lifecycle) validate() error {
	if l.DefaultLifetime < 0 || l.DefaultLifetime > MaxLifetime {
		return fieldErr(FieldDefaultLifetime, "must be between 0 (off) and %d seconds", int64(MaxLifetime/time.Second))
	}
	if l.DefaultLifetime > 0 && l.DefaultLifetime < 10*time.Second {
		return fieldErr(FieldDefaultLifetime, "must be at least 10 seconds (or 0 to turn it off)")
	}
	if d := l.BackgroundRefreshIdle; d != nil && (*d < 0 || *d > MaxLifetime) {
		return fieldErr(FieldBackgroundRefreshIdle, "must be between 0 (off) and %d seconds", int64(MaxLifetime/time.Second))
	}
	for _, f := range []struct {
		name string
		v    *int
	}{{FieldMaxRequestsPerMinute, l.MaxRequestsPerMinute}, {FieldMaxRequestsPerDay, l.MaxRequestsPerDay}} {
		if f.v != nil && (*f.v < 0 || *f.v > MaxRequestLimit) {
			return fieldErr(f.name, "must be between 0 (no limit) and %d", MaxRequestLimit)
		}
	}
	return nil
}

// String describes the budget for messages, e.g. "10/minute, 60/day".
func (l Limits) String() string {
	switch {
	case l.None():
		return "no limit"
	case l.PerDay <= 0:
		return fmt.Sprintf("%d/minute", l.PerMinute)
	case l.PerMinute <= 0:
		return fmt.Sprintf("%d/day", l.PerDay)
	}
	return fmt.Sprintf("%d/minute, %d/day", l.PerMinute, l.PerDay)
}
