package main

import (
	"slices"
	"time"
)

// sample is one request: when it started and how long it took.
type sample struct {
	start   time.Time
	latency time.Duration
}

// percentile returns the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method; 0 for no samples. ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(float64(len(ds))*p/100+0.999999) - 1
	rank = max(0, min(rank, len(ds)-1))
	return ds[rank]
}

// window is a span of time, [from, to].
type window struct{ from, to time.Time }

func (w window) contains(t time.Time) bool { return !t.Before(w.from) && !t.After(w.to) }

// splitByWindows separates the latencies of samples that started inside any
// window from those that started outside all of them.
func splitByWindows(samples []sample, windows []window) (inside, outside []time.Duration) {
	for _, s := range samples {
		in := false
		for _, w := range windows {
			if w.contains(s.start) {
				in = true
				break
			}
		}
		if in {
			inside = append(inside, s.latency)
		} else {
			outside = append(outside, s.latency)
		}
	}
	return inside, outside
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
