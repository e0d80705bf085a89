package broker

import (
	"context"
	"strings"
	"time"
)

// Job is periodic work of the mount that the one scheduler runs (the
// consent census of the root package): no goroutine or timer of its own,
// the broker's clock, one run at a time. Each run returns when to run next;
// a job paces itself that way (a page of work, then a pause). Jobs are not
// counted by Planned.
type Job struct {
	name string
	fn   func(ctx context.Context) (next time.Duration)
	plan plan
}

// NewJob returns a job named name (for logs; never a secret) that runs fn.
// fn returns how long after it ends the job runs again; 0 or less: not
// until planned again with PlanJob.
func NewJob(name string, fn func(ctx context.Context) (next time.Duration)) *Job {
	return &Job{name: strings.Clone(name), fn: fn, plan: plan{index: -1}}
}

func (j *Job) slot() *plan   { return &j.plan }
func (j *Job) label() string { return j.name }
func (j *Job) run(ctx context.Context, b *Broker, _ any) {
	next := j.fn(ctx)
	if next > 0 && ctx.Err() == nil {
		b.sched.addJob(j, b.clock.Now().Add(next).UnixNano(), false)
	}
}

// PlanJob plans j's next run after d from now, replacing its earlier plan.
func (b *Broker) PlanJob(j *Job, d time.Duration) {
	b.sched.addJob(j, b.clock.Now().Add(d).UnixNano(), false)
}

// PlanJobUnlessPlanned plans j's next run after d from now unless a run is
// planned already (one running is not planned: what it returns then
// replaces this plan).
func (b *Broker) PlanJobUnlessPlanned(j *Job, d time.Duration) {
	b.sched.addJob(j, b.clock.Now().Add(d).UnixNano(), true)
}

// addJob plans j at at (unless keep and j is planned), keeping the count
// of planned jobs that Planned leaves out.
func (s *scheduler) addJob(j *Job, at int64, keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || keep && j.plan.index >= 0 {
		return
	}
	if j.plan.index < 0 {
		s.jobs++
	}
	s.addLocked(j, nil, at)
}
