package bank

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterHeaders(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		h      http.Header
		want   time.Duration
		capped bool
		ok     bool
	}{
		{http.Header{"Retry-After": {"7"}}, 7 * time.Second, false, true},
		{http.Header{"X-Ratelimit-Retry-After": {"30"}}, 30 * time.Second, false, true},
		{http.Header{"Retry-After": {"5"}, "X-Ratelimit-Retry-After": {"12"}}, 12 * time.Second, false, true},
		{http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second, false, true},
		{http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0, false, true},
		{http.Header{"Retry-After": {"900"}}, 15 * time.Minute, false, true},
		// A hostile or broken bank cannot park the connection: both forms
		// are capped at MaxRetryAfter (the old code gave 2319-... and 366 days).
		{http.Header{"Retry-After": {"Fri, 31 Dec 9999 23:59:59 GMT"}}, MaxRetryAfter, true, true},
		{http.Header{"Retry-After": {now.Add(16 * time.Minute).Format(http.TimeFormat)}}, MaxRetryAfter, true, true},
		{http.Header{"Retry-After": {"31535999"}}, MaxRetryAfter, true, true},
		{http.Header{"X-Ratelimit-Retry-After": {"1e300"}}, MaxRetryAfter, true, true},
		{http.Header{"Retry-After": {"901"}, "X-Ratelimit-Retry-After": {"3"}}, MaxRetryAfter, true, true},
		{http.Header{"Retry-After": {"soon"}}, 0, false, false},
		{http.Header{"Retry-After": {"-3"}}, 0, false, false},
		{http.Header{}, 0, false, false},
	}
	for _, tc := range cases {
		got, capped, ok := retryAfter(tc.h, now)
		if got != tc.want || capped != tc.capped || ok != tc.ok {
			t.Errorf("%v: %s capped=%t %t, want %s capped=%t %t", tc.h, got, capped, ok, tc.want, tc.capped, tc.ok)
		}
	}
}

func TestBackoffIsJitteredAndBounded(t *testing.T) {
	for n := 1; n <= 6; n++ {
		bound := min(retryBaseDelay<<(n-1), retryMaxDelay)
		for i := 0; i < 200; i++ {
			if d := backoff(n); d < bound/2 || d > bound {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, bound/2, bound)
			}
		}
	}
}

func TestBudgetWindows(t *testing.T) {
	b := NewBudget(nil)
	b.SetLimits(Limits{PerMinute: 3, PerDay: 5})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		if err := b.take("p", t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	err := b.take("p", t0.Add(10*time.Second))
	be, ok := err.(*BudgetError)
	if !ok || be.Window != "minute" || !be.RetryAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("4th in a minute: %v", err)
	}
	// A minute later two more fit, then the day is full until the first is 24h old.
	for i := 0; i < 2; i++ {
		if err := b.take("p", t0.Add(2*time.Minute+time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	err = b.take("p", t0.Add(time.Hour))
	if be, ok = err.(*BudgetError); !ok || be.Window != "day" || !be.RetryAt.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("6th in a day: %v", err)
	}
	if err := b.take("p", t0.Add(24*time.Hour+time.Second)); err != nil {
		t.Fatalf("after a day: %v", err)
	}
	if sent, ok := b.Changed(); !ok || len(sent) != 4 {
		t.Fatalf("saved state %d times, want the 4 inside the last day", len(sent))
	}
	if _, ok := b.Changed(); ok {
		t.Fatal("unchanged budget reports a change")
	}
}
