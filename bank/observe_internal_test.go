package bank

import (
	"context"
	"testing"
)

func TestAttemptNumbering(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		ctx  context.Context
		x    exchange
		want int
	}{
		{ctx, exchange{}, 1},
		{withAttempt(ctx, 3), exchange{}, 3},
		{withAttempt(ctx, 3), exchange{attempt: 2}, 2},
		{withAttempt(ctx, 0), exchange{}, 1},
	}
	for i, c := range cases {
		if got := attemptOf(c.ctx, c.x); got != c.want {
			t.Errorf("case %d: attempt %d, want %d", i, got, c.want)
		}
	}
}
