package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 99) != 0 {
		t.Error("empty percentile not 0")
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("single sample p99 = %v", got)
	}
}

func TestSplitByWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	samples := []sample{{at(0), 1}, {at(5), 2}, {at(10), 3}, {at(11), 4}, {at(20), 5}}
	in, out := splitByWindows(samples, []window{{at(4), at(5)}, {at(10), at(12)}})
	if len(in) != 3 || in[0] != 2 || in[1] != 3 || in[2] != 4 {
		t.Errorf("inside %v", in)
	}
	if len(out) != 2 || out[0] != 1 || out[1] != 5 {
		t.Errorf("outside %v", out)
	}
}
