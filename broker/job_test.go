package broker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// A Job runs through the one scheduler at its planned time, on the
// broker's clock, plans itself from what it returns, and is not counted
// by Planned.
func TestJobRunsOnTheSchedulerAndPacesItself(t *testing.T) {
	clock := clockwork.NewFakeClock()
	b := New(Options{Clock: clock})
	defer b.Close()
	var runs atomic.Int32
	j := NewJob("census", func(context.Context) time.Duration {
		if runs.Add(1) < 3 {
			return time.Second
		}
		return 0
	})
	b.PlanJob(j, time.Minute)
	if b.Planned() != 0 {
		t.Errorf("a job counts as %d planned tasks", b.Planned())
	}
	step := func(d time.Duration) { clock.Advance(d); b.WaitBackground() }
	step(59 * time.Second)
	if runs.Load() != 0 {
		t.Fatal("the job ran before its time")
	}
	step(time.Second)
	step(999 * time.Millisecond)
	if runs.Load() != 1 {
		t.Fatalf("%d runs a minute after planning", runs.Load())
	}
	step(time.Millisecond)
	step(time.Second)
	step(time.Hour)
	if runs.Load() != 3 {
		t.Errorf("%d runs, want 3: the third returned 0", runs.Load())
	}
	if b.sched.jobs != 0 || len(b.sched.q) != 0 {
		t.Errorf("%d jobs, %d tasks left in the queue", b.sched.jobs, len(b.sched.q))
	}
}

// PlanJobUnlessPlanned leaves a planned run where it is, and plans one
// when none is.
func TestPlanJobUnlessPlanned(t *testing.T) {
	clock := clockwork.NewFakeClock()
	b := New(Options{Clock: clock})
	defer b.Close()
	var runs atomic.Int32
	j := NewJob("census", func(context.Context) time.Duration { runs.Add(1); return 0 })
	b.PlanJob(j, time.Minute)
	b.PlanJobUnlessPlanned(j, time.Hour)
	clock.Advance(time.Minute)
	b.WaitBackground()
	if runs.Load() != 1 {
		t.Fatalf("%d runs at the first plan, want 1", runs.Load())
	}
	b.PlanJobUnlessPlanned(j, time.Hour)
	b.PlanJobUnlessPlanned(j, time.Minute)
	clock.Advance(time.Hour)
	b.WaitBackground()
	if runs.Load() != 2 || b.Planned() != 0 {
		t.Errorf("%d runs, %d planned", runs.Load(), b.Planned())
	}
}
