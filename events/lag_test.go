package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
)

// deadCount counts dead letters by durable, as the service's metrics do.
type deadCount struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *deadCount) DeadLettered(durable string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n[durable]++
}

func (d *deadCount) get(durable string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[durable]
}

func lagOf(t *testing.T, bus *events.Bus, durable string) events.Lag {
	t.Helper()
	lags, err := bus.ConsumerLag(context.Background())
	if err != nil {
		t.Fatalf("consumer lag: %v", err)
	}
	for _, l := range lags {
		if l.Durable == durable {
			return l
		}
	}
	t.Fatalf("no lag reported for %s in %+v", durable, lags)
	return events.Lag{}
}

// A consumer stuck on its work shows how many messages wait behind it, and
// shows zero once it is through; a poison message is counted as a dead
// letter once and is kept where the count of stored dead letters sees it.
func TestBusReportsLagAndCountsDeadLetters(t *testing.T) {
	dead := &deadCount{n: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := events.Connect(ctx, events.BusConfig{StoreDir: t.TempDir(), DeadLetters: dead})
	if err != nil {
		t.Fatalf("connect embedded bus: %v", err)
	}
	t.Cleanup(bus.Close)

	release := make(chan struct{})
	consume(t, bus, events.ConsumerSpec{Stream: events.StreamSMS, Durable: "slow", Filters: []string{"sms.test.>"}, Workers: 1},
		func(ctx context.Context, ev events.Event) error {
			if ev.ID == "poison" {
				return events.Permanent(errors.New("cannot be handled"))
			}
			<-release
			return nil
		})
	for _, id := range []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m10"} {
		publish(t, bus, message(t, id, "sms.test."+id, time.Time{}))
	}
	// One worker takes at most 4 messages unacknowledged (MaxAckPending is
	// 4 per worker); the rest wait on the server.
	eventually(t, 10*time.Second, "the stuck consumer never showed its backlog", func() bool {
		l := lagOf(t, bus, "slow")
		return l.Stream == events.StreamSMS && l.AckPending >= 1 && l.Pending+uint64(l.AckPending) == 10
	})
	close(release)
	publish(t, bus, message(t, "poison", "sms.test.poison", time.Time{}))
	eventually(t, 10*time.Second, "the consumer never caught up", func() bool {
		l := lagOf(t, bus, "slow")
		return l.Pending == 0 && l.AckPending == 0 && dead.get("slow") == 1
	})
	counts, err := bus.DeadLetterCounts(context.Background())
	if err != nil {
		t.Fatalf("dead letter counts: %v", err)
	}
	if len(counts) != 1 || counts["slow"] != 1 {
		t.Errorf("dead letters kept = %v, want slow: 1", counts)
	}
}
