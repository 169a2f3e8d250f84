package schedule_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/schedule"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// natsURL starts a JetStream server on a loopback port, so that two
// "replicas" connect to it as they would to a production cluster.
func natsURL(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

// replica is one process's scheduler and consumer.
type replica struct {
	bus  *events.Bus
	stop func()
}

type runs struct {
	mu    sync.Mutex
	slots map[string]int
}

func (r *runs) handle(_ context.Context, f schedule.Fired) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slots[f.Job+"@"+f.Slot.In(shanghai).Format("01-02 15:04")]++
	return nil
}

func (r *runs) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.slots {
		out[k] = v
	}
	return out
}

func startReplica(t *testing.T, url string, db storage.DB, clock schedule.Clock, grace time.Duration, r *runs, jobs []schedule.Job) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bus, err := events.Connect(ctx, events.BusConfig{URL: url, Replicas: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	runner := &schedule.Runner{DB: db, Now: time.Now, Log: quiet, Handlers: map[string]schedule.Handler{"drill:*": r.handle, "weekly": r.handle}}
	sub, err := bus.Consume(ctx, events.ConsumerSpec{Stream: events.StreamTimers, Durable: "schedule", Workers: 2,
		Filters: []string{schedule.Filter}}, runner.Handle)
	if err != nil {
		t.Fatal(err)
	}
	s := &schedule.Scheduler{DB: db, Bus: bus, Clock: clock, Zone: shanghai, Grace: grace, Log: quiet,
		Jobs: func(context.Context) ([]schedule.Job, error) { return jobs, nil }}
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	rep := &replica{bus: bus}
	rep.stop = func() { cancel(); <-done; sub.Stop(); bus.Close() }
	t.Cleanup(rep.stop)
	return rep
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two replicas share one NATS and one database: each slot runs once.
func TestTwoReplicasFireEachSlotOnce(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		url := natsURL(t)
		start := time.Date(2026, 11, 23, 8, 59, 30, 0, shanghai) // a Monday
		clock := schedule.NewFakeClock(start)
		r := &runs{slots: map[string]int{}}
		jobs := []schedule.Job{{Name: "weekly", Spec: "0 9 * * 1"}, {Name: "drill:c1:fire", Spec: "*/30 9 * * *", Drill: true}}
		startReplica(t, url, db, clock, time.Hour, r, jobs)
		startReplica(t, url, db, clock, time.Hour, r, jobs)
		waitFor(t, "both schedulers asleep", func() bool { return clock.Waiters() >= 2 })

		clock.Set(start.Add(31 * time.Minute)) // past 09:00 and 09:30
		want := map[string]int{"weekly@11-23 09:00": 1, "drill:c1:fire@11-23 09:00": 1, "drill:c1:fire@11-23 09:30": 1}
		waitFor(t, "three slots", func() bool { return len(r.snapshot()) == 3 })
		time.Sleep(300 * time.Millisecond) // room for a duplicate to show up
		if got := r.snapshot(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("slots run %v, want %v", got, want)
		}
	})
}

// After downtime a slot missed within the grace window fires once on
// start-up; one missed before it is not replayed.
func TestMissedSlotWithinGraceFiresOnStartUp(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		url := natsURL(t)
		r := &runs{slots: map[string]int{}}
		jobs := []schedule.Job{{Name: "weekly", Spec: "0 9 * * *"}}
		// First life: Monday 09:00 fires.
		monday := time.Date(2026, 11, 23, 8, 59, 0, 0, shanghai)
		clock := schedule.NewFakeClock(monday)
		first := startReplica(t, url, db, clock, 30*time.Minute, r, jobs)
		waitFor(t, "asleep", func() bool { return clock.Waiters() >= 1 })
		clock.Set(monday.Add(2 * time.Minute))
		waitFor(t, "Monday's slot", func() bool { return r.snapshot()["weekly@11-23 09:00"] == 1 })
		first.stop()

		// Down until Wednesday 09:20: Tuesday 09:00 is too old, Wednesday's is 20 minutes late.
		wednesday := time.Date(2026, 11, 25, 9, 20, 0, 0, shanghai)
		startReplica(t, url, db, schedule.NewFakeClock(wednesday), 30*time.Minute, r, jobs)
		waitFor(t, "Wednesday's late slot", func() bool { return r.snapshot()["weekly@11-25 09:00"] == 1 })
		time.Sleep(300 * time.Millisecond)
		if got := r.snapshot(); got["weekly@11-24 09:00"] != 0 || len(got) != 2 {
			t.Fatalf("slots run %v: Tuesday's slot, missed by more than the grace, must not be replayed", got)
		}
	})
}

func TestParseSpec(t *testing.T) {
	for _, ok := range []string{"0 9 * * 1", "*/15 * * * *", "CRON_TZ=Asia/Shanghai 0 3 1 * *", "@weekly"} {
		if _, err := schedule.ParseSpec(ok); err != nil {
			t.Errorf("ParseSpec(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "61 * * * *", "every monday", "0 9 * * 1 2026"} {
		if _, err := schedule.ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) accepted", bad)
		}
	}
}
