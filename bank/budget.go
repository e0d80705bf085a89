package bank

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Budget counts the requests sent to a bank for one config and refuses a
// request that would exceed its Limits, over sliding 60 s and 24 h windows.
// It is safe for concurrent use. Its state (the send times still inside a
// window) can be saved and restored, so a restart does not reset the count.
type Budget struct {
	mu     sync.Mutex
	limits Limits
	sent   []time.Time // ascending
	dirty  bool
}

// NewBudget returns a budget that remembers the given earlier send times.
func NewBudget(sent []time.Time) *Budget {
	s := append([]time.Time(nil), sent...)
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	return &Budget{sent: s}
}

// SetLimits changes the limits (a config update).
func (b *Budget) SetLimits(l Limits) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limits = l
}

// Limits returns the current limits.
func (b *Budget) Limits() Limits {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limits
}

// BudgetError is returned instead of a bank request when the request budget
// is spent. No request was sent.
type BudgetError struct {
	Provider string
	Window   string // "minute" or "day"
	Limit    int
	Field    string    // the config field that sets the limit
	RetryAt  time.Time // when the next request fits
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("%s request budget spent: %d bank requests in the last %s (%s=%d); bankauth sends no request before %s (in %s)",
		e.Provider, e.Limit, e.Window, e.Field, e.Limit, e.RetryAt.UTC().Format(time.RFC3339),
		time.Until(e.RetryAt).Round(time.Second))
}

// take records a request at now, or returns a *BudgetError if it does not fit.
func (b *Budget) take(provider string, now time.Time) error {
	return b.fit(provider, now, 1, true)
}

// room returns a *BudgetError unless n requests fit at now; it records nothing.
func (b *Budget) room(provider string, now time.Time, n int) error {
	return b.fit(provider, now, n, false)
}

func (b *Budget) fit(provider string, now time.Time, n int, record bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.limits.None() {
		return nil
	}
	b.prune(now)
	for _, w := range []struct {
		name, field string
		limit       int
		span        time.Duration
	}{
		{"minute", FieldMaxRequestsPerMinute, b.limits.PerMinute, time.Minute},
		{"day", FieldMaxRequestsPerDay, b.limits.PerDay, 24 * time.Hour},
	} {
		if w.limit <= 0 {
			continue
		}
		from := sort.Search(len(b.sent), func(i int) bool { return b.sent[i].After(now.Add(-w.span)) })
		inWindow := b.sent[from:]
		if len(inWindow)+n > w.limit {
			// The requests fit once the oldest sends that make the window full leave it.
			retry := now
			if i := len(inWindow) + n - 1 - w.limit; i >= 0 && i < len(inWindow) {
				retry = inWindow[i].Add(w.span)
			}
			return &BudgetError{Provider: provider, Window: w.name, Limit: w.limit, Field: w.field, RetryAt: retry}
		}
	}
	if !record {
		return nil
	}
	b.sent = append(b.sent, now)
	b.dirty = true
	return nil
}

// prune forgets sends that no window looks at any more.
func (b *Budget) prune(now time.Time) {
	keep := time.Minute
	if b.limits.PerDay > 0 {
		keep = 24 * time.Hour
	}
	i := sort.Search(len(b.sent), func(i int) bool { return b.sent[i].After(now.Add(-keep)) })
	if i > 0 {
		b.sent = append(b.sent[:0:0], b.sent[i:]...)
		b.dirty = true
	}
}

// Changed returns the send times to save when they changed since the last
// call, and ok=false when there is nothing new to save.
func (b *Budget) Changed() (sent []time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.dirty {
		return nil, false
	}
	b.dirty = false
	return append([]time.Time(nil), b.sent...), true
}
