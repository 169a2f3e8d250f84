// Package schedule fires timed jobs (cron specs in Asia/Shanghai) through
// JetStream, so that several replicas sharing one NATS fire each slot
// once: every replica publishes the slot with Nats-Msg-Id = job + slot
// time, JetStream drops the copies, and one durable consumer runs the job.
// A slot is also recorded in the database, so a replica starting after a
// downtime fires a recently missed slot once and only logs older ones.
package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// Subject prefix of fired slots, on the TIMERS stream.
const subjectPrefix = "timers.schedule."

// Filter is the consumer filter for fired slots.
const Filter = subjectPrefix + ">"

// Job is something to do at the times a cron spec names.
type Job struct {
	// Name identifies the job and its slots; stable across restarts.
	Name string
	// Spec is a standard 5-field cron spec in the scheduler's zone, or
	// with a CRON_TZ= prefix.
	Spec string
	// Community the job is about, if any; carried on the event.
	Community string
	// Drill marks jobs that start drills.
	Drill bool
}

// Fired is the payload of a fired slot.
type Fired struct {
	Job  string    `json:"job"`
	Slot time.Time `json:"slot"`
}

// Publisher is where fired slots go.
type Publisher interface {
	Publish(ctx context.Context, m events.Message) error
}

// Scheduler wakes at each job's slots and publishes them.
type Scheduler struct {
	DB    storage.DB
	Bus   Publisher
	Clock Clock
	Zone  *time.Location
	// Grace is how late a missed slot may still fire, e.g. after a restart.
	Grace time.Duration
	// Jobs lists the jobs; it is asked again on every wake-up, so jobs
	// added at run time (drill schedules) are picked up within MaxSleep.
	Jobs     func(ctx context.Context) ([]Job, error)
	MaxSleep time.Duration
	Log      *slog.Logger
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSpec checks a cron spec; the error says what is wrong.
func ParseSpec(spec string) (cron.Schedule, error) {
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("cron spec %q: %w", spec, err)
	}
	return s, nil
}

// SlotID is the Nats-Msg-Id of a job's slot: the same on every replica.
func SlotID(job string, slot time.Time) string {
	return "schedule:" + job + "@" + slot.UTC().Format(time.RFC3339)
}

// Message is the message that fires a job's slot.
func Message(j Job, slot, now time.Time) (events.Message, error) {
	ev, err := events.New(SlotID(j.Name, slot), "schedule.fired", subjectPrefix+subjectToken(j.Name), j.Community, now,
		Fired{Job: j.Name, Slot: slot.UTC()})
	if err != nil {
		return events.Message{}, err
	}
	ev.Drill = j.Drill
	return events.EventMessage(ev, time.Time{})
}

// subjectToken keeps a job name usable as one NATS subject token.
func subjectToken(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' {
			return '_'
		}
		return r
	}, name)
}

// Run fires slots until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	maxSleep := s.MaxSleep
	if maxSleep <= 0 {
		maxSleep = time.Minute
	}
	start := s.Clock.Now()
	cursor := start.Add(-s.Grace)
	first := true
	for {
		now := s.Clock.Now()
		next := now.Add(maxSleep)
		jobs, err := s.Jobs(ctx)
		if err != nil {
			s.Log.Error("list scheduled jobs", "err", err)
		}
		for _, j := range jobs {
			sched, err := ParseSpec(j.Spec)
			if err != nil {
				s.Log.Error("scheduled job has a bad spec", "job", j.Name, "err", err)
				continue
			}
			if first {
				s.logMissed(ctx, j, sched, cursor)
			}
			for slot := sched.Next(cursor.In(s.Zone)); !slot.After(now); slot = sched.Next(slot) {
				s.fire(ctx, j, slot, now)
			}
			if n := sched.Next(now.In(s.Zone)); n.Before(next) {
				next = n
			}
		}
		first = false
		cursor = now
		select {
		case <-ctx.Done():
			return
		case <-s.Clock.After(next.Sub(now)):
		}
	}
}

// logMissed reports slots that fell before the grace window since the job
// last fired: they are not replayed, since a drill or reminder hours late
// would confuse more than it helps.
func (s *Scheduler) logMissed(ctx context.Context, j Job, sched cron.Schedule, since time.Time) {
	var last int64
	err := s.DB.QueryRow(ctx, `SELECT COALESCE(MAX(slot), 0) FROM schedule_runs WHERE job = $1`, j.Name).Scan(&last)
	if err != nil {
		s.Log.Error("last slot of scheduled job", "job", j.Name, "err", err)
		return
	}
	if last == 0 {
		return
	}
	missed := 0
	var firstMissed time.Time
	for slot := sched.Next(time.UnixMilli(last).In(s.Zone)); slot.Before(since) && missed < 10000; slot = sched.Next(slot) {
		if missed == 0 {
			firstMissed = slot
		}
		missed++
	}
	if missed > 0 {
		s.Log.Warn("scheduled slots missed while down; not replayed", "job", j.Name, "missed", missed,
			"first", firstMissed.Format(time.RFC3339), "grace", s.Grace.String())
	}
}

func (s *Scheduler) fire(ctx context.Context, j Job, slot, now time.Time) {
	m, err := Message(j, slot, now)
	if err != nil {
		s.Log.Error("build scheduled slot", "job", j.Name, "err", err)
		return
	}
	// Another replica publishes the same slot: JetStream keeps one.
	for try := 0; try < 3; try++ {
		if err = s.Bus.Publish(ctx, m); err == nil {
			s.Log.Info("scheduled slot fired", "job", j.Name, "slot", slot.Format(time.RFC3339))
			return
		}
		if ctx.Err() != nil {
			return
		}
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	s.Log.Error("publish scheduled slot", "job", j.Name, "slot", slot.Format(time.RFC3339), "err", err)
}

// Handler runs one job's slot. It must be idempotent: a slot whose
// handler failed is run again.
type Handler func(ctx context.Context, j Fired) error

// Runner runs fired slots: one durable consumer across replicas.
type Runner struct {
	DB  storage.DB
	Now func() time.Time
	Log *slog.Logger
	// Handlers by job name; a prefix ending in "*" matches many jobs
	// (e.g. "drill:*").
	Handlers map[string]Handler
}

func (r *Runner) handlerFor(job string) (Handler, bool) {
	if h, ok := r.Handlers[job]; ok {
		return h, true
	}
	var prefixes []string
	for k := range r.Handlers {
		if strings.HasSuffix(k, "*") && strings.HasPrefix(job, strings.TrimSuffix(k, "*")) {
			prefixes = append(prefixes, k)
		}
	}
	if len(prefixes) == 0 {
		return nil, false
	}
	sort.Slice(prefixes, func(i, j int) bool { return len(prefixes[i]) > len(prefixes[j]) })
	return r.Handlers[prefixes[0]], true
}

// Handle runs a fired slot once.
func (r *Runner) Handle(ctx context.Context, ev events.Event) error {
	var f Fired
	if err := ev.Decode(&f); err != nil {
		return events.Permanent(err)
	}
	h, ok := r.handlerFor(f.Job)
	if !ok {
		return events.Permanent(fmt.Errorf("no handler for scheduled job %s", f.Job))
	}
	now := r.Now()
	if _, err := r.DB.Exec(ctx, `INSERT INTO schedule_runs (job, slot, fired_at, done_at) VALUES ($1, $2, $3, 0)
		ON CONFLICT (job, slot) DO NOTHING`, f.Job, f.Slot.UnixMilli(), now.UnixMilli()); err != nil {
		return fmt.Errorf("record slot of %s: %w", f.Job, err)
	}
	var done int64
	if err := r.DB.QueryRow(ctx, `SELECT done_at FROM schedule_runs WHERE job = $1 AND slot = $2`,
		f.Job, f.Slot.UnixMilli()).Scan(&done); err != nil {
		return fmt.Errorf("read slot of %s: %w", f.Job, err)
	}
	if done != 0 {
		return nil // ran before: a late duplicate from a restarted replica
	}
	if err := h(ctx, f); err != nil {
		return fmt.Errorf("scheduled job %s at %s: %w", f.Job, f.Slot.Format(time.RFC3339), err)
	}
	_, err := r.DB.Exec(ctx, `UPDATE schedule_runs SET done_at = $3 WHERE job = $1 AND slot = $2`,
		f.Job, f.Slot.UnixMilli(), r.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("mark slot of %s done: %w", f.Job, err)
	}
	r.Log.Info("scheduled job done", "job", f.Job, "slot", f.Slot.Format(time.RFC3339))
	return nil
}
