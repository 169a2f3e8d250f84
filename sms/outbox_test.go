package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/sms/twiliofake"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// The outbox contract against both stores: a text is queued once per key,
// handed to the provider once, and a text that will never arrive is reported.

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	start = time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
)

const medicPhone = "+8613800138000"

func offerText(key, offer string) sms.Text {
	return sms.Text{
		Key: key, Community: "xinhua", Incident: "in_fire1", Offer: offer, To: medicPhone,
		Template: sms.TplOffer, Params: offerParams(),
		Purpose: sms.TplOffer,
	}
}

func offerParams() map[string]string {
	return map[string]string{"type": "火灾", "address": "3号楼", "distance": "300米", "ref": "F1", "link": "https://s.example/o/x"}
}

// enqueue queues t the way dispatch does, in a transaction, and returns the
// sms.send event the sender will be woken with.
func enqueue(t *testing.T, db storage.DB, text sms.Text) (events.Event, bool) {
	t.Helper()
	ctx := context.Background()
	var m events.Message
	var queued bool
	err := db.InTx(ctx, func(q storage.Querier) error {
		var err error
		m, queued, err = sms.Enqueue(ctx, q, start, text)
		return err
	})
	if err != nil {
		t.Fatalf("enqueue %s: %v", text.Key, err)
	}
	var ev events.Event
	if queued {
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("decode staged sms.send: %v", err)
		}
	}
	return ev, queued
}

func outboxID(t *testing.T, ev events.Event) string {
	t.Helper()
	first, _ := wakeUpIDs(t, ev)
	if first == "" {
		t.Fatalf("sms.send payload %s names no text", ev.Payload)
	}
	return first
}

// wakeUpIDs reads an sms.send payload: the first text it names
// (outbox_id) and the list of them (outbox_ids), empty when it names one.
func wakeUpIDs(t *testing.T, ev events.Event) (string, []string) {
	t.Helper()
	var p struct {
		OutboxID  string   `json:"outbox_id"`
		OutboxIDs []string `json:"outbox_ids"`
	}
	if err := ev.Decode(&p); err != nil {
		t.Fatalf("sms.send payload %s: %v", ev.Payload, err)
	}
	return p.OutboxID, p.OutboxIDs
}

func get(t *testing.T, db storage.DB, id string) sms.Queued {
	t.Helper()
	q, err := sms.Get(context.Background(), db, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return q
}

func stagedIDs(t *testing.T, db storage.DB) []string {
	t.Helper()
	return storagetest.Strings(t, db, `SELECT id FROM event_outbox ORDER BY id`)
}

func newBus(t *testing.T) *events.Bus {
	t.Helper()
	bus, err := events.Connect(context.Background(), events.BusConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("embedded bus: %v", err)
	}
	t.Cleanup(bus.Close)
	return bus
}

// failures lists the sms.failed events JetStream holds.
func failures(t *testing.T, bus *events.Bus) []sms.FailedPayload {
	t.Helper()
	ctx := context.Background()
	s, err := bus.JetStream().Stream(ctx, events.StreamSMS)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []sms.FailedPayload
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil || m.Subject != events.SMSFailedSubject {
			continue
		}
		var ev events.Event
		var p sms.FailedPayload
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if err := ev.Decode(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func newSender(db storage.DB, bus *events.Bus, p sms.Provider) *sms.Sender {
	return &sms.Sender{DB: db, Provider: p, Relay: events.NewRelay(db, bus, quiet), Log: quiet,
		Now: func() time.Time { return start.Add(time.Second) }}
}

// provider is a stand-in for an SMS gateway: it answers with err, or
// accepts the text.
type provider struct {
	mu   sync.Mutex
	err  error
	sent []sms.Outgoing
	n    int
}

func (p *provider) Send(_ context.Context, m sms.Outgoing) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.err != nil {
		return "", p.err
	}
	p.sent = append(p.sent, m)
	return "SMfake" + m.To, nil
}

func (p *provider) calls() int { p.mu.Lock(); defer p.mu.Unlock(); return p.n }

func (p *provider) set(err error) { p.mu.Lock(); p.err = err; p.mu.Unlock() }

func TestEnqueueSameKeyQueuesOneText(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		first := offerText("offer:in_fire1:rs_1", "of_1")
		ev, queued := enqueue(t, db, first)
		if !queued {
			t.Fatal("first enqueue: queued = false")
		}
		if ev.Type != "sms.send" || ev.Subject != "sms.send.xinhua" {
			t.Errorf("wake-up event %s on %s, want sms.send on sms.send.xinhua", ev.Type, ev.Subject)
		}

		// The dispatcher's event is redelivered and it queues the offer again.
		again := first
		again.Params = map[string]string{"type": "a different rendering"}
		if _, queued := enqueue(t, db, again); queued {
			t.Error("second enqueue with the same key: queued = true")
		}

		texts, err := sms.ListFor(ctx, db, "in_fire1")
		if err != nil {
			t.Fatal(err)
		}
		if len(texts) != 1 {
			t.Fatalf("texts for the incident = %d, want 1", len(texts))
		}
		got := texts[0]
		if got.ID != outboxID(t, ev) || got.Status != sms.StatusPending || got.Body != sms.Render(sms.TplOffer, "zh-CN", offerParams(), false) || got.Template != sms.TplOffer || got.To != medicPhone ||
			got.Offer != "of_1" || got.Purpose != sms.TplOffer || got.Attempts != 0 || !got.CreatedAt.Equal(start) {
			t.Errorf("queued text = %+v, want the first one, pending", got)
		}
		if ids := stagedIDs(t, db); len(ids) != 1 || ids[0] != ev.ID {
			t.Errorf("event outbox = %v, want only %s", ids, ev.ID)
		}

		// A different key to the same phone is a different text.
		if _, queued := enqueue(t, db, offerText("offer:in_fire2:rs_1", "of_2")); !queued {
			t.Error("a text with another key was not queued")
		}
		if _, err := sms.Get(ctx, db, "sm_missing"); err == nil {
			t.Error("Get of a missing text succeeded")
		}
	})
}

func TestSenderSendsAQueuedTextOnce(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		sink := &sms.DevSink{DB: db, Now: func() time.Time { return start }}
		s := newSender(db, newBus(t), sink)
		ev, _ := enqueue(t, db, offerText("offer:in_fire1:rs_1", "of_1"))

		if err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("handle: %v", err)
		}
		// Redelivered after a lost ack: the medic must not get it twice.
		if err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("handle again: %v", err)
		}
		sent, err := sink.List(ctx, sms.ChannelSMS, medicPhone, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(sent) != 1 || !strings.Contains(sent[0].Body, "回复 1 接受") {
			t.Fatalf("medic received %+v, want the offer once", sent)
		}
		q := get(t, db, outboxID(t, ev))
		if q.Status != sms.StatusSent || q.ProviderSID != sent[0].SID || q.Attempts != 1 || q.LastError != "" {
			t.Errorf("outbox row = %+v, want sent with sid %s after 1 attempt", q, sent[0].SID)
		}
		if other, _ := sink.List(ctx, sms.ChannelSMS, "+8613900000000", 0); len(other) != 0 {
			t.Errorf("someone else received %v", other)
		}
	})
}

func TestSenderKeepsTextPendingWhileProviderIsDown(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		p := &provider{err: errors.New("dial tcp: connection refused")}
		s := newSender(db, newBus(t), p)
		ev, _ := enqueue(t, db, offerText("offer:in_fire1:rs_1", "of_1"))
		id := outboxID(t, ev)

		err := s.Handle(ctx, ev)
		if err == nil {
			t.Fatal("handle during an outage returned nil; the bus would not retry")
		}
		q := get(t, db, id)
		if q.Status != sms.StatusPending || !strings.Contains(q.LastError, "connection refused") || q.Attempts != 1 {
			t.Errorf("outbox row = %+v, want pending with the error recorded", q)
		}

		// The bus retries once the provider is back.
		p.set(nil)
		if err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("retry: %v", err)
		}
		q = get(t, db, id)
		if q.Status != sms.StatusSent || q.LastError != "" || q.Attempts != 2 || len(p.sent) != 1 {
			t.Errorf("after retry row = %+v, sent %d; want sent once, error cleared", q, len(p.sent))
		}
		// A provider that sends by registered template id gets the name and
		// parameters, not only the rendered words.
		if got := p.sent[0]; got.Template != sms.TplOffer || got.Params["ref"] != "F1" || got.Locale != "zh-CN" {
			t.Errorf("provider got template %q params %v locale %q", got.Template, got.Params, got.Locale)
		}
	})
}

func TestSenderReportsATextTheProviderRefuses(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		bus := newBus(t)
		p := &provider{err: &sms.PermanentError{Code: 21211, Err: errors.New("invalid 'To' phone number")}}
		s := newSender(db, bus, p)
		ev, _ := enqueue(t, db, offerText("offer:in_fire1:rs_1", "of_1"))
		id := outboxID(t, ev)

		// A refused text is not an error to retry: the offer must move on.
		if err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("handle: %v", err)
		}
		q := get(t, db, id)
		if q.Status != sms.StatusFailed || !strings.Contains(q.LastError, "21211") {
			t.Errorf("outbox row = %+v, want failed with the provider's code", q)
		}
		f := failures(t, bus)
		if len(f) != 1 || f[0].OutboxID != id || f[0].Offer != "of_1" || f[0].Incident != "in_fire1" ||
			f[0].Purpose != sms.TplOffer || !strings.Contains(f[0].Reason, "21211") {
			t.Fatalf("sms.failed events = %+v, want one for offer of_1", f)
		}
		if ids := stagedIDs(t, db); len(ids) != 1 || ids[0] != ev.ID {
			// Only the sms.send wake-up (relayed elsewhere) may remain.
			t.Errorf("event outbox = %v, want the sms.failed event relayed and removed", ids)
		}

		if err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("handle again: %v", err)
		}
		if p.calls() != 1 {
			t.Errorf("provider asked %d times, want once: a failed text is not retried", p.calls())
		}
		if f := failures(t, bus); len(f) != 1 {
			t.Errorf("sms.failed published %d times, want once", len(f))
		}
	})
}

func TestRecordStatusFirstFinalReceiptWins(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		sink := &sms.DevSink{DB: db, Now: func() time.Time { return start }}
		s := newSender(db, newBus(t), sink)
		send := func(key, offer string) (string, string) {
			t.Helper()
			ev, _ := enqueue(t, db, offerText(key, offer))
			if err := s.Handle(ctx, ev); err != nil {
				t.Fatal(err)
			}
			q := get(t, db, outboxID(t, ev))
			return q.ID, q.ProviderSID
		}
		receipt := func(sid, status, code string) []events.Message {
			t.Helper()
			msgs, err := sms.RecordStatus(ctx, db, start.Add(time.Minute), sid, status, code)
			if err != nil {
				t.Fatalf("receipt %s %s: %v", sid, status, err)
			}
			return msgs
		}

		// Delivered, then a late contradictory receipt: delivered stands.
		id1, sid1 := send("offer:in_fire1:rs_1", "of_1")
		if msgs := receipt(sid1, "delivered", ""); len(msgs) != 0 {
			t.Errorf("delivered produced %d events", len(msgs))
		}
		if msgs := receipt(sid1, "undelivered", "30003"); len(msgs) != 0 {
			t.Errorf("undelivered after delivered produced %d events", len(msgs))
		}
		if q := get(t, db, id1); q.Status != sms.StatusDelivered {
			t.Errorf("status = %s, want delivered kept", q.Status)
		}

		// An offer text that never arrives frees the offer for someone else.
		before := len(stagedIDs(t, db))
		id2, sid2 := send("offer:in_fire1:rs_2", "of_2")
		if msgs := receipt(sid2, "sent", ""); len(msgs) != 0 {
			t.Errorf("an interim receipt produced %d events", len(msgs))
		}
		msgs := receipt(sid2, "undelivered", "30003")
		if len(msgs) != 1 {
			t.Fatalf("undelivered produced %d events, want 1", len(msgs))
		}
		var ev events.Event
		var f sms.FailedPayload
		if err := json.Unmarshal(msgs[0].Data, &ev); err != nil {
			t.Fatal(err)
		}
		if err := ev.Decode(&f); err != nil {
			t.Fatal(err)
		}
		if ev.Subject != events.SMSFailedSubject || f.Offer != "of_2" || f.OutboxID != id2 || !strings.Contains(f.Reason, "30003") {
			t.Errorf("failed event %s %+v, want sms.failed for offer of_2", ev.Subject, f)
		}
		if ids := stagedIDs(t, db); len(ids) != before+2 { // the sms.send wake-up and sms.failed
			t.Errorf("event outbox = %v, want sms.failed staged with the status change", ids)
		}
		q := get(t, db, id2)
		if q.Status != sms.StatusUndelivered || q.LastError != "30003" {
			t.Errorf("row = %+v, want undelivered with code 30003", q)
		}
		if msgs := receipt(sid2, "undelivered", "30003"); len(msgs) != 0 {
			t.Errorf("a repeated receipt produced %d more events", len(msgs))
		}
		if msgs := receipt(sid2, "delivered", ""); len(msgs) != 0 || get(t, db, id2).Status != sms.StatusUndelivered {
			t.Errorf("a late delivered receipt changed an undelivered text")
		}

		if msgs, err := sms.RecordStatus(ctx, db, start.Add(time.Minute), "SMnot-ours", "undelivered", "30005"); !errors.Is(err, sms.ErrUnknownSID) || len(msgs) != 0 {
			t.Errorf("a receipt for an unknown sid: %d events, err %v; want ErrUnknownSID", len(msgs), err)
		}
		// A receipt without a SID names no text, though unsent texts have
		// no SID either.
		ev3, _ := enqueue(t, db, offerText("offer:in_fire1:rs_3", "of_3"))
		if msgs, err := sms.RecordStatus(ctx, db, start.Add(time.Minute), "", "undelivered", "30005"); !errors.Is(err, sms.ErrUnknownSID) || len(msgs) != 0 {
			t.Errorf("a receipt without a sid: %d events, err %v; want ErrUnknownSID", len(msgs), err)
		}
		if q := get(t, db, outboxID(t, ev3)); q.Status != sms.StatusPending {
			t.Errorf("an unsent text took a receipt without a sid: %s", q.Status)
		}
		// From the bus: an unknown id is retried while young (the sender may
		// not have recorded it yet), then dropped.
		r := &sms.Receipts{DB: db, Log: quiet, Now: func() time.Time { return start.Add(time.Minute) }}
		fresh, _ := events.New("status:x", "sms.status", "sms.status", "", start, sms.Receipt{SID: "SMnot-ours", Status: "failed", At: start})
		if err := r.Handle(ctx, fresh); err == nil {
			t.Error("a fresh receipt for an unknown id must be retried")
		}
		r.Now = func() time.Time { return start.Add(time.Hour) }
		if err := r.Handle(ctx, fresh); err != nil {
			t.Errorf("an old receipt for an unknown id must be dropped, got %v", err)
		}
	})
}

// The sender through the real twilio-go client against the fake Twilio.
func TestSenderThroughTwilio(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		bus := newBus(t)
		fake := twiliofake.New(t)
		tw := sms.NewTwilio(twiliofake.AccountSID, twiliofake.AuthToken, "+15005550006", sms.WithHTTPClient(fake.Client()))
		s := newSender(db, bus, tw)
		s.StatusCallback = "https://shouwang.example.org/v1/sms/status"

		// An outage: the text waits, then goes out once.
		fake.SetDown(http.StatusServiceUnavailable)
		ev, _ := enqueue(t, db, offerText("offer:in_fire1:rs_1", "of_1"))
		if err := s.Handle(ctx, ev); err == nil {
			t.Fatal("handle during a Twilio outage returned nil")
		}
		if q := get(t, db, outboxID(t, ev)); q.Status != sms.StatusPending || q.LastError == "" {
			t.Errorf("during outage row = %+v, want pending with an error", q)
		}
		fake.SetUp()
		for range 2 { // delivered, then redelivered
			if err := s.Handle(ctx, ev); err != nil {
				t.Fatalf("handle: %v", err)
			}
		}
		got := fake.MessagesTo(medicPhone)
		if len(got) != 1 || got[0].StatusCallback != s.StatusCallback || !strings.Contains(got[0].Body, "回复 1 接受") {
			t.Fatalf("Twilio received %+v, want the offer once with the status callback", got)
		}
		if q := get(t, db, outboxID(t, ev)); q.Status != sms.StatusSent || q.ProviderSID != got[0].SID {
			t.Errorf("row = %+v, want sent with Twilio's sid %s", q, got[0].SID)
		}

		// Twilio says the number is invalid: failed, and the offer is told.
		fake.FailNext(1, http.StatusBadRequest, 21211)
		bad, _ := enqueue(t, db, offerText("offer:in_fire1:rs_2", "of_2"))
		if err := s.Handle(ctx, bad); err != nil {
			t.Fatalf("handle refused text: %v", err)
		}
		if q := get(t, db, outboxID(t, bad)); q.Status != sms.StatusFailed {
			t.Errorf("refused text status = %s, want failed", q.Status)
		}
		if f := failures(t, bus); len(f) != 1 || f[0].Offer != "of_2" {
			t.Errorf("sms.failed events = %+v, want one for of_2", f)
		}

		// Twilio's receipt for the first text says it never arrived.
		msgs, err := sms.RecordStatus(ctx, db, start.Add(time.Minute), got[0].SID, "undelivered", "30006")
		if err != nil || len(msgs) != 1 {
			t.Fatalf("RecordStatus = %d events, %v; want 1", len(msgs), err)
		}
		var ev2 events.Event
		var f sms.FailedPayload
		if err := json.Unmarshal(msgs[0].Data, &ev2); err != nil {
			t.Fatal(err)
		}
		if err := ev2.Decode(&f); err != nil || f.Offer != "of_1" {
			t.Errorf("failed payload = %+v, %v; want offer of_1", f, err)
		}
	})
}
