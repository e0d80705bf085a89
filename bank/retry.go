package bank

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retry policy. A small loop rather than go-retryablehttp: a retry here is a
// whole protocol step (İşbank's code and token requests run again together),
// each attempt must take from the request budget, and a 429 whose wait does
// not fit the deadline must fail at once. retryablehttp retries single HTTP
// requests and would need each of those rules bolted on through hooks.
const (
	// MaxAttempts is how many times a transient failure is tried in all.
	MaxAttempts = 3
	// retryBaseDelay and retryMaxDelay bound the jittered exponential backoff.
	retryBaseDelay = 250 * time.Millisecond
	retryMaxDelay  = 2 * time.Second
)

// transientStatus reports whether an HTTP status is worth a retry.
func transientStatus(status int) bool {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	}
	return false
}

// MaxRetryAfter caps how long a bank's Retry-After can keep a connection
// from asking again: a bank (or anything posing as one) could otherwise
// park it for centuries with an HTTP date in year 9999.
const MaxRetryAfter = 15 * time.Minute

// retryAfter reads how long the bank asks to wait: Retry-After (seconds or
// an HTTP date) or Acceleration Cloud's X-RateLimit-Retry-After (seconds);
// the longer if both are given, at most MaxRetryAfter (capped reports that
// the bank asked for longer).
func retryAfter(h http.Header, now time.Time) (wait time.Duration, capped, found bool) {
	for _, name := range []string{"Retry-After", "X-RateLimit-Retry-After"} {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		var d time.Duration
		over := false
		if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
			if over = n > MaxRetryAfter.Seconds(); !over {
				d = time.Duration(n * float64(time.Second))
			}
		} else if t, err := http.ParseTime(v); err == nil {
			d = max(t.Sub(now), 0)
			over = t.Sub(now) > MaxRetryAfter // Sub saturates: year 9999 is over too
		} else {
			continue
		}
		if over {
			d, capped = MaxRetryAfter, true
		}
		if !found || d > wait {
			wait, found = d, true
		}
	}
	return wait, capped, found
}

// backoff is the wait before retry number n (1-based): full jitter over an
// exponentially growing bound.
func backoff(n int) time.Duration {
	bound := min(retryBaseDelay<<(n-1), retryMaxDelay)
	return bound/2 + rand.N(bound/2+1)
}

// withRetries runs try until it succeeds, fails for good, or MaxAttempts is
// reached. Only transient failures (*UpstreamError.Transient) are retried,
// after a jittered backoff or the wait the bank asked for; every wait must
// fit inside ctx's deadline (the config's timeout), else the last error is
// returned at once. A spent request budget ends the retries.
func (c *Client) withRetries(ctx context.Context, try func(context.Context) (*Token, error)) (*Token, error) {
	var last error
	for attempt := 1; ; attempt++ {
		tok, err := try(withAttempt(ctx, attempt))
		if err == nil {
			if attempt > 1 {
				c.logger.Info("bank request succeeded after retry", "provider", c.provider.Name(), "attempt", attempt)
			}
			return tok, nil
		}
		var be *BudgetError
		if errors.As(err, &be) && last != nil {
			c.logger.Warn("request budget spent, not retrying", "provider", c.provider.Name(), "limit", be.Limit, "window", be.Window)
			return nil, last
		}
		last = err
		var ue *UpstreamError
		if !errors.As(err, &ue) || !ue.Transient || ctx.Err() != nil {
			return nil, err
		}
		if attempt >= MaxAttempts {
			c.logger.Warn("bank request failed, no attempts left", "provider", c.provider.Name(), "step", ue.Step,
				"status", ue.Status, "attempts", attempt)
			return nil, err
		}
		wait := backoff(attempt)
		if !ue.RetryAt.IsZero() {
			wait = max(ue.RetryAt.Sub(c.now()), 0) // RetryAt is on the client's clock
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
			c.logger.Warn("bank request failed, retry would not fit the timeout", "provider", c.provider.Name(),
				"step", ue.Step, "status", ue.Status, "attempt", attempt, "wait", wait)
			return nil, err
		}
		c.logger.Warn("bank request failed, retrying", "provider", c.provider.Name(), "step", ue.Step,
			"status", ue.Status, "attempt", attempt, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}
