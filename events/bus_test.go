package events_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
)

// newBus starts a real embedded NATS with JetStream for one test.
func newBus(t *testing.T) *events.Bus {
	t.Helper()
	bus := connectAt(t, t.TempDir())
	t.Cleanup(bus.Close)
	return bus
}

// connectAt starts an embedded bus on the store in dir; the caller closes
// it, and may start another on the same store.
func connectAt(t *testing.T, dir string) *events.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := events.Connect(ctx, events.BusConfig{StoreDir: dir})
	if err != nil {
		t.Fatalf("connect embedded bus at %s: %v", dir, err)
	}
	return bus
}

// consume starts a durable consumer that is stopped before the bus closes.
func consume(t *testing.T, bus *events.Bus, spec events.ConsumerSpec, h events.Handler) *events.Subscription {
	t.Helper()
	sub, err := bus.Consume(context.Background(), spec, h)
	if err != nil {
		t.Fatalf("consume %s: %v", spec.Durable, err)
	}
	t.Cleanup(sub.Stop)
	return sub
}

// eventually polls cond until it holds or timeout passes. The timeouts are
// generous: they only bound a broken test, never pace a working one.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// message builds an event message on subject with a stable id.
func message(t *testing.T, id, subject string, notBefore time.Time) events.Message {
	t.Helper()
	ev, err := events.New(id, "test.happened", subject, "xinhua", time.Now(), map[string]string{"what": id})
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.EventMessage(ev, notBefore)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func publish(t *testing.T, bus *events.Bus, msgs ...events.Message) {
	t.Helper()
	for _, m := range msgs {
		if err := bus.Publish(context.Background(), m); err != nil {
			t.Fatalf("publish %s: %v", m.ID, err)
		}
	}
}

// counter records how often each event id was handled.
type counter struct {
	mu   sync.Mutex
	seen map[string]int
	at   map[string]time.Time
}

func newCounter() *counter { return &counter{seen: map[string]int{}, at: map[string]time.Time{}} }

func (c *counter) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[id]++
	if _, ok := c.at[id]; !ok {
		c.at[id] = time.Now()
	}
	return c.seen[id]
}

func (c *counter) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id]
}

func (c *counter) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// settled waits until the consumer has nothing in flight and nothing left:
// after it, a count can no longer grow by a redelivery.
func settled(t *testing.T, bus *events.Bus, stream, durable string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 10*time.Second, durable+" still has messages pending", func() bool {
		c, err := bus.JetStream().Consumer(ctx, stream, durable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
}

func deadLetters(t *testing.T, bus *events.Bus) []events.DeadLetter {
	t.Helper()
	dl, err := bus.DeadLetters(context.Background(), 100)
	if err != nil {
		t.Fatalf("dead letters: %v", err)
	}
	return dl
}

func TestBusSameMessageIDIsDeliveredOnce(t *testing.T) {
	bus := newBus(t)
	seen := newCounter()
	consume(t, bus, events.ConsumerSpec{Stream: events.StreamSMS, Durable: "dedup", Filters: []string{"sms.test.>"}},
		func(_ context.Context, ev events.Event) error { seen.add(ev.ID); return nil })

	// An API replica retrying a publish after a lost ack sends the same id.
	press := message(t, "alarm-1", "sms.test.a", time.Time{})
	publish(t, bus, press, press, message(t, "alarm-2", "sms.test.a", time.Time{}))

	eventually(t, 10*time.Second, "alarm-2 not handled", func() bool { return seen.count("alarm-2") == 1 })
	settled(t, bus, events.StreamSMS, "dedup")
	if n := seen.count("alarm-1"); n != 1 {
		t.Errorf("alarm-1 handled %d times, want once", n)
	}
}

func TestBusRetriesAFailingHandlerUntilItSucceeds(t *testing.T) {
	bus := newBus(t)
	seen := newCounter()
	consume(t, bus, events.ConsumerSpec{Stream: events.StreamSMS, Durable: "flaky", Filters: []string{"sms.test.>"}, MaxTries: 5},
		func(_ context.Context, ev events.Event) error {
			if seen.add(ev.ID) < 3 {
				return errors.New("database restarting")
			}
			return nil
		})
	publish(t, bus, message(t, "offer-1", "sms.test.a", time.Time{}))

	eventually(t, 15*time.Second, "offer-1 not handled a third time", func() bool { return seen.count("offer-1") >= 3 })
	settled(t, bus, events.StreamSMS, "flaky")
	if n := seen.count("offer-1"); n != 3 {
		t.Errorf("offer-1 handled %d times, want 3 (two failures, one success)", n)
	}
	if dl := deadLetters(t, bus); len(dl) != 0 {
		t.Errorf("a message that succeeded on retry was dead-lettered: %+v", dl)
	}
}

func TestBusDeadLettersAPoisonMessageAndMovesOn(t *testing.T) {
	bus := newBus(t)
	seen := newCounter()
	consume(t, bus, events.ConsumerSpec{Stream: events.StreamSMS, Durable: "poisoned", Filters: []string{"sms.test.>"}, MaxTries: 3},
		func(_ context.Context, ev events.Event) error {
			seen.add(ev.ID)
			if ev.ID == "poison" {
				return fmt.Errorf("payload of %s makes no sense", ev.ID)
			}
			return nil
		})
	publish(t, bus, message(t, "poison", "sms.test.bad", time.Time{}), message(t, "healthy", "sms.test.good", time.Time{}))

	// The next message is not stuck behind the poison one.
	eventually(t, 10*time.Second, "the message after the poison one was not handled", func() bool { return seen.count("healthy") == 1 })
	var dl []events.DeadLetter
	eventually(t, 15*time.Second, "poison message not dead-lettered", func() bool {
		dl = deadLetters(t, bus)
		return len(dl) > 0
	})
	settled(t, bus, events.StreamSMS, "poisoned")
	if n := seen.count("poison"); n != 3 {
		t.Errorf("poison handled %d times, want MaxTries = 3", n)
	}
	if len(dl) != 1 {
		t.Fatalf("dead letters = %+v, want one", dl)
	}
	d := dl[0]
	if d.Durable != "poisoned" || d.Subject != "sms.test.bad" || !strings.Contains(d.Error, "payload of poison makes no sense") ||
		!strings.Contains(d.Data, `"id":"poison"`) {
		t.Errorf("dead letter = %+v, want durable, subject, error text and the original event", d)
	}
}

func TestBusPermanentErrorIsDeadLetteredAtOnce(t *testing.T) {
	bus := newBus(t)
	seen := newCounter()
	consume(t, bus, events.ConsumerSpec{Stream: events.StreamSMS, Durable: "strict", Filters: []string{"sms.test.>"}, MaxTries: 8},
		func(_ context.Context, ev events.Event) error {
			seen.add(ev.ID)
			return events.Permanent(errors.New("unknown incident type volcano"))
		})
	publish(t, bus, message(t, "bad-type", "sms.test.a", time.Time{}))

	var dl []events.DeadLetter
	eventually(t, 10*time.Second, "permanent failure not dead-lettered", func() bool {
		dl = deadLetters(t, bus)
		return len(dl) > 0
	})
	settled(t, bus, events.StreamSMS, "strict")
	if n := seen.count("bad-type"); n != 1 {
		t.Errorf("handled %d times, want once: a permanent error is not retried", n)
	}
	if !strings.Contains(dl[0].Error, "unknown incident type volcano") {
		t.Errorf("dead letter error = %q, want the handler's reason", dl[0].Error)
	}
}

func TestBusHoldsAMessageUntilNotBefore(t *testing.T) {
	bus := newBus(t)
	seen := newCounter()
	consume(t, bus, events.ConsumerSpec{Stream: events.StreamTimers, Durable: "waves", Filters: []string{events.TimerSubjectWave}},
		func(_ context.Context, ev events.Event) error { seen.add(ev.ID); return nil })

	// The header carries milliseconds, so compare at that precision.
	notBefore := time.UnixMilli(time.Now().Add(500 * time.Millisecond).UnixMilli())
	publish(t, bus, message(t, "wave-2-due", events.TimerSubjectWave, notBefore))

	eventually(t, 10*time.Second, "timer never fired", func() bool { return seen.count("wave-2-due") > 0 })
	seen.mu.Lock()
	at := seen.at["wave-2-due"]
	seen.mu.Unlock()
	if at.Before(notBefore) {
		t.Errorf("wave timer handled at %v, %v before it was due", at.Format(time.StampMilli), notBefore.Sub(at))
	}
	settled(t, bus, events.StreamTimers, "waves")
	if n := seen.count("wave-2-due"); n != 1 {
		t.Errorf("timer handled %d times, want once", n)
	}
}

func TestBusTwoConsumersOfOneDurableShareTheWork(t *testing.T) {
	bus := newBus(t)
	seen := newCounter()
	var mu sync.Mutex
	perReplica := map[string]int{}
	for _, replica := range []string{"replica-a", "replica-b"} {
		consume(t, bus, events.ConsumerSpec{Stream: events.StreamSMS, Durable: "shared", Filters: []string{"sms.test.>"}, Workers: 2},
			func(_ context.Context, ev events.Event) error {
				seen.add(ev.ID)
				mu.Lock()
				perReplica[replica]++
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // long enough for the other replica to take some
				return nil
			})
	}
	const n = 40
	for i := range n {
		publish(t, bus, message(t, fmt.Sprintf("text-%02d", i), "sms.test.a", time.Time{}))
	}

	eventually(t, 15*time.Second, "not every message was handled", func() bool { return seen.distinct() == n })
	settled(t, bus, events.StreamSMS, "shared")
	for i := range n {
		id := fmt.Sprintf("text-%02d", i)
		if c := seen.count(id); c != 1 {
			t.Errorf("%s handled %d times, want exactly once across both replicas", id, c)
		}
	}
	mu.Lock()
	t.Logf("split between replicas: %v", perReplica)
	mu.Unlock()
}
