package events_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

func persistMode(t *testing.T, bus *events.Bus, stream string) jetstream.PersistModeType {
	t.Helper()
	s, err := bus.JetStream().Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.PersistMode
}

// Only the streams the outbox feeds skip the fsync a message on the
// embedded server; the ones published to directly keep it.
func TestEmbeddedStreamsFsyncEachMessageUnlessTheOutboxFeedsThem(t *testing.T) {
	bus := newBus(t)
	want := map[string]jetstream.PersistModeType{
		events.StreamAlarms:     jetstream.DefaultPersistMode,
		events.StreamSMS:        jetstream.DefaultPersistMode,
		events.StreamDeadLetter: jetstream.DefaultPersistMode,
		events.StreamIncidents:  jetstream.AsyncPersistMode,
		events.StreamTimers:     jetstream.AsyncPersistMode,
	}
	for stream, mode := range want {
		if got := persistMode(t, bus, stream); got != mode {
			t.Errorf("%s persist mode = %v, want %v", stream, got, mode)
		}
	}
	if bus.Settle() <= 0 || bus.Settle() >= events.NewRelay(nil, bus, quiet).Grace {
		t.Errorf("Settle = %v, want above zero and below the relay's grace", bus.Settle())
	}
}

// A store made before the streams opted out keeps working: JetStream
// refuses to change a stream's persist mode, so the stream keeps its own.
func TestEmbeddedBusOpensAStoreWhoseStreamsFsyncEveryMessage(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	bus := connectAt(t, dir)
	s, err := bus.JetStream().Stream(ctx, events.StreamIncidents)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if err := bus.JetStream().DeleteStream(ctx, events.StreamIncidents); err != nil {
		t.Fatal(err)
	}
	cfg.PersistMode = jetstream.DefaultPersistMode
	if _, err := bus.JetStream().CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	bus.Close()

	bus = connectAt(t, dir)
	defer bus.Close()
	if got := persistMode(t, bus, events.StreamIncidents); got != jetstream.DefaultPersistMode {
		t.Errorf("INCIDENTS persist mode = %v after reopening, want the default it was made with", got)
	}
}

// The promise behind skipping the fsync: a message JetStream acknowledged
// but had not yet written when the machine stopped is published again
// from its outbox row. The test stops the server cleanly, then cuts the
// stream's file back to before the message, which is what a power cut
// leaves of writes the server still buffered.
func TestRelayPublishesAgainWhatTheStreamLostBeforeItSettled(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		bus := connectAt(t, dir)
		relay := events.NewRelay(db, bus, quiet)
		relay.Settle = bus.Settle()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); relay.Run(runCtx, time.Hour) }()
		time.Sleep(20 * time.Millisecond) // let Run take over the DELETEs

		const subject = "incidents.xinhua.fire.opened"
		send := func(id string) events.Message {
			m := message(t, id, subject, time.Time{})
			if err := relay.Commit(ctx, func(q storage.Querier) ([]events.Message, error) {
				return []events.Message{m}, events.Stage(ctx, q, time.Now(), m)
			}); err != nil {
				t.Fatal(err)
			}
			return m
		}

		send("opened:settles")
		if ids := staged(t, db); len(ids) != 1 {
			t.Fatalf("outbox = %v just after the publish, want the row kept until it settles", ids)
		}
		eventually(t, 5*time.Second, "the settled message's row forgotten", func() bool { return len(staged(t, db)) == 0 })
		block := filepath.Join(dir, "jetstream", "$G", "streams", events.StreamIncidents, "msgs", "1.blk")
		settledSize := fileSize(t, block)

		lost := send("opened:lost")
		stop()
		<-done
		if ids := staged(t, db); len(ids) != 1 || ids[0] != lost.ID {
			t.Fatalf("outbox = %v after Run stopped, want %s kept: it had not settled", ids, lost.ID)
		}
		bus.Close()
		if fileSize(t, block) <= settledSize {
			t.Fatalf("%s did not grow with the second message", block)
		}
		if err := os.Truncate(block, settledSize); err != nil {
			t.Fatal(err)
		}
		// The stream's index is written at shutdown; a power cut would not.
		if err := os.Remove(filepath.Join(dir, "jetstream", "$G", "streams", events.StreamIncidents, "msgs", "index.db")); err != nil {
			t.Fatal(err)
		}

		bus = connectAt(t, dir)
		defer bus.Close()
		if n := incidentsStored(t, bus); n != 1 {
			t.Fatalf("stream holds %d messages after the cut, want 1 (the lost one gone)", n)
		}
		relay = events.NewRelay(db, bus, quiet)
		relay.Settle = bus.Settle()
		n, err := relay.Sweep(ctx, time.Now().Add(relay.Grace))
		if err != nil || n != 1 {
			t.Fatalf("Sweep = %d, %v; want the lost message published again", n, err)
		}
		if n := incidentsStored(t, bus); n != 2 {
			t.Fatalf("stream holds %d messages after the sweep, want 2", n)
		}
		if data, _, ok := onBus(t, bus, events.StreamIncidents, subject); !ok || data != string(lost.Data) {
			t.Errorf("last message on %s = %q, want the lost one back", subject, data)
		}
	})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
