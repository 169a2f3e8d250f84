package events_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func staged(t *testing.T, db storage.DB) []string {
	t.Helper()
	return storagetest.Strings(t, db, `SELECT id FROM event_outbox ORDER BY created_at, id`)
}

// onBus reads back the last message JetStream stored on subject.
func onBus(t *testing.T, bus *events.Bus, stream, subject string) (data string, notBefore string, ok bool) {
	t.Helper()
	ctx := context.Background()
	s, err := bus.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return "", "", false
	}
	return string(m.Data), m.Header.Get(events.HeaderNotBefore), true
}

// downBus is a bus that cannot be reached: it stands for a NATS outage.
type downBus struct {
	mu    sync.Mutex
	tries int
}

func (d *downBus) Publish(context.Context, events.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tries++
	return errors.New("nats: no servers available for connection")
}

func TestStageInARolledBackTransactionStagesNothing(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		bus := newBus(t)
		now := time.Now()
		m := message(t, "opened:in_rolled_back", "incidents.xinhua.fire.opened", time.Time{})

		boom := errors.New("incident insert failed")
		err := db.InTx(ctx, func(q storage.Querier) error {
			if err := events.Stage(ctx, q, now, m); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want the callback's error", err)
		}
		if ids := staged(t, db); len(ids) != 0 {
			t.Fatalf("rolled-back transaction left %v in the outbox", ids)
		}
		n, err := events.NewRelay(db, bus, quiet).Sweep(ctx, now.Add(time.Hour))
		if err != nil || n != 0 {
			t.Fatalf("Sweep = %d, %v; want nothing to publish", n, err)
		}
		if _, _, ok := onBus(t, bus, events.StreamIncidents, m.Subject); ok {
			t.Error("an event of a rolled-back change reached the bus")
		}
	})
}

func TestRelaySweepPublishesCommittedMessagesAfterGrace(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		bus := newBus(t)
		relay := events.NewRelay(db, bus, quiet)
		now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
		wave := time.Date(2026, 11, 22, 20, 2, 0, 0, time.UTC)
		opened := message(t, "opened:in_1", "incidents.xinhua.fire.opened", time.Time{})
		timer := message(t, "wave:in_1:2", events.TimerSubjectWave, wave)

		if err := db.InTx(ctx, func(q storage.Querier) error { return events.Stage(ctx, q, now, opened, timer) }); err != nil {
			t.Fatalf("stage: %v", err)
		}
		// Staging the same fact again (a redelivered handler) keeps one row.
		if err := events.Stage(ctx, db, now, opened); err != nil {
			t.Fatalf("stage again: %v", err)
		}
		if ids := staged(t, db); len(ids) != 2 {
			t.Fatalf("outbox = %v, want the two staged messages", ids)
		}

		// Within the grace period the handler that staged them may be
		// publishing them right now; the sweeper leaves them alone.
		if n, err := relay.Sweep(ctx, now.Add(relay.Grace/2)); err != nil || n != 0 {
			t.Fatalf("Sweep within grace = %d, %v; want 0", n, err)
		}
		if len(staged(t, db)) != 2 {
			t.Fatal("sweep within grace removed messages")
		}

		n, err := relay.Sweep(ctx, now.Add(relay.Grace+time.Second))
		if err != nil || n != 2 {
			t.Fatalf("Sweep after grace = %d, %v; want 2", n, err)
		}
		if ids := staged(t, db); len(ids) != 0 {
			t.Errorf("published messages still in the outbox: %v", ids)
		}
		data, _, ok := onBus(t, bus, events.StreamIncidents, opened.Subject)
		if !ok || data != string(opened.Data) {
			t.Errorf("incident.opened on the bus = %q (found %v), want the staged event", data, ok)
		}
		_, nb, ok := onBus(t, bus, events.StreamTimers, events.TimerSubjectWave)
		if !ok || nb != strconv.FormatInt(wave.UnixMilli(), 10) {
			t.Errorf("wave timer on the bus: found %v, not-before %q; want %d kept through the outbox", ok, nb, wave.UnixMilli())
		}
	})
}

func TestRelaySendDeletesOnlyWhatItPublished(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		bus := newBus(t)
		now := time.Now()
		sent := message(t, "opened:in_2", "incidents.xinhua.medical.opened", time.Time{})
		if err := events.Stage(ctx, db, now, sent); err != nil {
			t.Fatal(err)
		}
		events.NewRelay(db, bus, quiet).Send(ctx, []events.Message{sent})
		if ids := staged(t, db); len(ids) != 0 {
			t.Errorf("Send left %v in the outbox", ids)
		}
		if data, _, ok := onBus(t, bus, events.StreamIncidents, sent.Subject); !ok || data != string(sent.Data) {
			t.Errorf("sent message not on the bus (found %v)", ok)
		}

		// While the bus is down, the message stays staged, and the sweeper
		// publishes it once the bus is back.
		stuck := message(t, "opened:in_3", "incidents.xinhua.gas_leak.opened", time.Time{})
		if err := events.Stage(ctx, db, now, stuck); err != nil {
			t.Fatal(err)
		}
		down := &downBus{}
		events.NewRelay(db, down, quiet).Send(ctx, []events.Message{stuck})
		if down.tries != 1 {
			t.Fatalf("publish tried %d times, want 1", down.tries)
		}
		if ids := staged(t, db); len(ids) != 1 || ids[0] != stuck.ID {
			t.Fatalf("after a failed publish the outbox = %v, want %s kept", ids, stuck.ID)
		}
		if n, err := events.NewRelay(db, down, quiet).Sweep(ctx, now.Add(time.Minute)); err == nil || n != 0 {
			t.Errorf("Sweep with the bus down = %d, %v; want an error", n, err)
		}
		if n, err := events.NewRelay(db, bus, quiet).Sweep(ctx, now.Add(time.Minute)); err != nil || n != 1 {
			t.Fatalf("Sweep once the bus is back = %d, %v; want 1", n, err)
		}
		if _, _, ok := onBus(t, bus, events.StreamIncidents, stuck.Subject); !ok {
			t.Error("the message staged during the outage never reached the bus")
		}
		if ids := staged(t, db); len(ids) != 0 {
			t.Errorf("outbox = %v after the sweep, want empty", ids)
		}
	})
}

// Many handlers finish at once, each Send with one to three messages: each
// finds its own messages gone from the outbox when Send returns, and every
// message is on the bus.
func TestRelayConcurrentSendsForgetEveryPublishedMessage(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		bus := newBus(t)
		relay := events.NewRelay(db, bus, quiet)
		now := time.Now()
		const senders = 40
		msgs := make([][]events.Message, senders)
		for i := range msgs {
			for j := range 1 + i%3 { // one to three messages a Send
				m := message(t, "opened:in_c"+strconv.Itoa(i)+"_"+strconv.Itoa(j), "incidents.xinhua.medical.opened", time.Time{})
				msgs[i] = append(msgs[i], m)
			}
			if err := events.Stage(ctx, db, now, msgs[i]...); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		left := make([]int, senders)
		for i := range msgs {
			wg.Go(func() {
				relay.Send(ctx, msgs[i])
				// What this Send published is gone from the outbox now.
				for _, id := range staged(t, db) {
					for _, m := range msgs[i] {
						if m.ID == id {
							left[i]++
						}
					}
				}
			})
		}
		wg.Wait()
		for i, n := range left {
			if n != 0 {
				t.Errorf("Send %d returned with %d of its messages still staged", i, n)
			}
		}
		if ids := staged(t, db); len(ids) != 0 {
			t.Errorf("outbox = %v after every Send returned, want empty", ids)
		}
		stored := incidentsStored(t, bus)
		want := 0
		for _, m := range msgs {
			want += len(m)
		}
		if stored != uint64(want) {
			t.Errorf("stream holds %d messages, want the %d published", stored, want)
		}
	})
}

// While Run runs, Send leaves the DELETE to it: the outbox still empties
// (without the sweeper publishing anything again), and what is pending when
// Run stops is deleted on the way out.
func TestRunningRelayForgetsPublishedMessagesTogether(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		bus := newBus(t)
		relay := events.NewRelay(db, bus, quiet)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); relay.Run(runCtx, time.Hour) }()
		time.Sleep(20 * time.Millisecond) // let Run take over the DELETEs

		now := time.Now()
		const senders = 30
		var wg sync.WaitGroup
		for i := range senders {
			m := message(t, "opened:in_r"+strconv.Itoa(i), "incidents.xinhua.medical.opened", time.Time{})
			if err := events.Stage(ctx, db, now, m); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { relay.Send(ctx, []events.Message{m}) })
		}
		wg.Wait()
		deadline := time.Now().Add(5 * time.Second)
		for len(staged(t, db)) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if ids := staged(t, db); len(ids) != 0 {
			t.Fatalf("outbox = %v 5 s after the sends, want it emptied by the running relay", ids)
		}

		// Published just before shutdown: Run deletes it as it stops.
		last := message(t, "opened:in_last", "incidents.xinhua.medical.opened", time.Time{})
		if err := events.Stage(ctx, db, now, last); err != nil {
			t.Fatal(err)
		}
		relay.Send(ctx, []events.Message{last})
		stop()
		<-done
		if ids := staged(t, db); len(ids) != 0 {
			t.Errorf("outbox = %v after Run stopped, want the last message forgotten too", ids)
		}
		if stored := incidentsStored(t, bus); stored != senders+1 {
			t.Errorf("stream holds %d messages, want %d: each published once", stored, senders+1)
		}
	})
}

// incidentsStored is how many messages the INCIDENTS stream holds.
func incidentsStored(t *testing.T, bus *events.Bus) uint64 {
	t.Helper()
	ctx := context.Background()
	s, err := bus.JetStream().Stream(ctx, events.StreamIncidents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
