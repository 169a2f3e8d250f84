package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// phoneProvider accepts texts except to the phones marked down.
type phoneProvider struct {
	mu   sync.Mutex
	down map[string]bool
	sent map[string]int
}

func (p *phoneProvider) Send(_ context.Context, m sms.Outgoing) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[m.To] {
		return "", errors.New("dial tcp: connection refused")
	}
	p.sent[m.To]++
	return "SM" + m.To, nil
}

func (p *phoneProvider) up(phone string) { p.mu.Lock(); delete(p.down, phone); p.mu.Unlock() }

func (p *phoneProvider) count(phone string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[phone]
}

// The texts of one transaction wake the sender with one message; the
// sender sends each once, and when one of them cannot go yet the message
// is retried for that one alone.
func TestTextsQueuedTogetherShareOneWakeUp(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		phones := []string{"+8613800138001", "+8613800138002", "+8613800138003"}
		var texts []sms.Text
		for i, phone := range phones {
			tx := offerText("offer:in_fire1:rs_"+phone, "of_"+phone)
			tx.To = phone
			if i == 2 {
				tx.Purpose = "duty"
			}
			texts = append(texts, tx)
		}
		reminder := sms.Text{Key: "reminder:1", Community: "xinhua", To: phones[0], Template: sms.TplOffer,
			Params: offerParams(), Purpose: "reminder", Bulk: true}
		queue := func() []events.Message {
			t.Helper()
			var staged []events.Message
			err := db.InTx(ctx, func(q storage.Querier) error {
				var err error
				staged, err = sms.QueueAll(ctx, q, start, append(texts, reminder)...)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return staged
		}
		staged := queue()
		if len(staged) != 2 || staged[0].Subject != events.SMSSendSubject("xinhua") || staged[1].Subject != events.SMSBulkSubject("xinhua") {
			t.Fatalf("staged %+v, want one live and one bulk wake-up", staged)
		}
		if ids := stagedIDs(t, db); len(ids) != 2 {
			t.Fatalf("event outbox holds %v, want the two wake-ups", ids)
		}
		var ev events.Event
		if err := json.Unmarshal(staged[0].Data, &ev); err != nil {
			t.Fatal(err)
		}
		first, ids := wakeUpIDs(t, ev)
		if len(ids) != 3 || first != ids[0] {
			t.Fatalf("live wake-up payload %s, want three ids and the first as outbox_id", ev.Payload)
		}

		prov := &phoneProvider{down: map[string]bool{phones[1]: true}, sent: map[string]int{}}
		s := newSender(db, newBus(t), prov)
		err := s.Handle(ctx, ev)
		if err == nil {
			t.Fatal("a text not sent, yet the message was acknowledged: it would never be retried")
		}
		if _, ok := events.RetryDelay(err); ok {
			t.Errorf("outage error %v asks for a fixed delay; want the bus's backoff", err)
		}
		if prov.count(phones[0]) != 1 || prov.count(phones[2]) != 1 || prov.count(phones[1]) != 0 {
			t.Fatalf("sent %v, want the two reachable phones once each", prov.sent)
		}
		if got := get(t, db, ids[1]); got.Status != sms.StatusPending {
			t.Errorf("text to the unreachable phone is %s, want pending", got.Status)
		}

		prov.up(phones[1])
		if err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("retry: %v", err)
		}
		for _, phone := range phones {
			if n := prov.count(phone); n != 1 {
				t.Errorf("%s got %d texts, want 1", phone, n)
			}
		}
		for _, id := range ids {
			if got := get(t, db, id); got.Status != sms.StatusSent {
				t.Errorf("text %s is %s, want sent", id, got.Status)
			}
		}
		// A redelivered handler queues nothing again and stages nothing.
		if again := queue(); len(again) != 0 {
			t.Errorf("queueing the same keys again staged %+v", again)
		}
	})
}

// A message staged before texts shared wake-ups names one text.
func TestSenderTakesAOneTextWakeUp(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		id := ""
		err := db.InTx(ctx, func(q storage.Querier) error {
			staged, err := sms.QueueAll(ctx, q, start, offerText("offer:in_fire1:rs_1", "of_1"))
			if err == nil && len(staged) == 1 {
				var ev events.Event
				if err := json.Unmarshal(staged[0].Data, &ev); err != nil {
					return err
				}
				id = outboxID(t, ev)
			}
			return err
		})
		if err != nil || id == "" {
			t.Fatalf("queue: %v (id %q)", err, id)
		}
		old, err := events.New("send:"+id, "sms.send", events.SMSSendSubject("xinhua"), "xinhua", start,
			map[string]string{"outbox_id": id})
		if err != nil {
			t.Fatal(err)
		}
		prov := &phoneProvider{sent: map[string]int{}}
		if err := newSender(db, newBus(t), prov).Handle(ctx, old); err != nil {
			t.Fatal(err)
		}
		if prov.count(medicPhone) != 1 || get(t, db, id).Status != sms.StatusSent {
			t.Errorf("sent %v, row %s; want the one text sent", prov.sent, get(t, db, id).Status)
		}
	})
}

// Texts queued together go in with as few statements as their number
// allows (issue 8), and keep the outbox's promise: a key queued before, or
// twice in the same call, is one text; the wake-up names the new texts in
// the order they were given, across statements.
func TestQueueAllQueuesEachKeyOnceAcrossStatements(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		queue := func(texts ...sms.Text) []string {
			t.Helper()
			var staged []events.Message
			err := db.InTx(ctx, func(q storage.Querier) error {
				var err error
				staged, err = sms.QueueAll(ctx, q, start, texts...)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(staged) == 0 {
				return nil
			}
			if len(staged) != 1 {
				t.Fatalf("staged %d wake-ups for live texts, want 1", len(staged))
			}
			var ev events.Event
			if err := json.Unmarshal(staged[0].Data, &ev); err != nil {
				t.Fatal(err)
			}
			first, ids := wakeUpIDs(t, ev)
			if len(ids) == 0 {
				return []string{first}
			}
			return ids
		}
		text := func(n int) sms.Text {
			tx := offerText(fmt.Sprintf("offer:in_fire1:rs_%03d", n), fmt.Sprintf("of_%03d", n))
			tx.To = fmt.Sprintf("+86138%08d", n)
			return tx
		}
		if ids := queue(text(0), text(1)); len(ids) != 2 {
			t.Fatalf("first call woke the sender for %v, want 2 texts", ids)
		}
		// 250 new texts (more than one statement holds), the two queued
		// before, and one key given twice.
		var texts []sms.Text
		for n := range 252 {
			texts = append(texts, text(n))
		}
		texts = append(texts, text(7))
		ids := queue(texts...)
		if len(ids) != 250 {
			t.Fatalf("second call woke the sender for %d texts, want the 250 new ones", len(ids))
		}
		for i, id := range ids {
			m := get(t, db, id)
			if want := fmt.Sprintf("offer:in_fire1:rs_%03d", i+2); m.Key != want || m.Status != sms.StatusPending {
				t.Fatalf("wake-up's text %d is %s (%s), want %s pending: the order given", i, m.Key, m.Status, want)
			}
			if m.Body == "" || !strings.Contains(m.Body, "3号楼") {
				t.Fatalf("text %s body %q, want the rendered offer", m.Key, m.Body)
			}
		}
		if n := storagetest.Strings(t, db, `SELECT id FROM sms_outbox`); len(n) != 252 {
			t.Errorf("outbox holds %d texts, want 252: one a key", len(n))
		}
		if again := queue(texts...); again != nil {
			t.Errorf("queueing the same keys again woke the sender for %d texts", len(again))
		}
	})
}

// The texts of one wake-up are claimed and recorded sent together, in
// statements of many rows (issue 8): each row still gets its own provider
// id and time, a text named twice in the message goes once, and the
// incident's first offer is marked once.
func TestSenderRecordsEachTextOfAWakeUpWithItsOwnSID(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		var texts []sms.Text
		for n := range 250 {
			tx := offerText(fmt.Sprintf("offer:in_fire1:rs_%03d", n), fmt.Sprintf("of_%03d", n))
			tx.To = fmt.Sprintf("+86139%08d", n)
			texts = append(texts, tx)
		}
		var staged []events.Message
		err := db.InTx(ctx, func(q storage.Querier) error {
			var err error
			staged, err = sms.QueueAll(ctx, q, start, texts...)
			return err
		})
		if err != nil || len(staged) != 1 {
			t.Fatalf("queue: %v, %d wake-ups", err, len(staged))
		}
		var queued events.Event
		if err := json.Unmarshal(staged[0].Data, &queued); err != nil {
			t.Fatal(err)
		}
		_, ids := wakeUpIDs(t, queued)
		// Repeats must not be sent twice, however the message came to
		// name them.
		named := append(append([]string{}, ids...), ids[0], ids[249], ids[0])
		ev, err := events.New("send:repeats", "sms.send", events.SMSSendSubject("xinhua"), "xinhua", start,
			map[string]any{"outbox_id": named[0], "outbox_ids": named})
		if err != nil {
			t.Fatal(err)
		}
		prov := &phoneProvider{sent: map[string]int{}}
		s := newSender(db, newBus(t), prov)
		for range 2 { // the second time as a redelivery
			if err := s.Handle(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		sentAt := start.Add(time.Second).UnixMilli()
		for i, tx := range texts {
			if n := prov.count(tx.To); n != 1 {
				t.Errorf("%s got %d texts, want 1", tx.To, n)
			}
			m := get(t, db, ids[i])
			if m.Status != sms.StatusSent || m.ProviderSID != "SM"+tx.To || m.To != tx.To {
				t.Fatalf("text %s to %s is %s with sid %q, want sent with SM%s", m.ID, m.To, m.Status, m.ProviderSID, tx.To)
			}
			if got := storagetest.Strings(t, db, `SELECT CAST(sent_at AS TEXT) FROM sms_outbox WHERE id = $1`, m.ID); len(got) != 1 ||
				got[0] != fmt.Sprint(sentAt) {
				t.Fatalf("text %s sent_at %v, want %d", m.ID, got, sentAt)
			}
		}
		marks := storagetest.Strings(t, db, `SELECT id FROM timeline WHERE kind = $1`, incidents.KindFirstOfferSent)
		if len(marks) != 1 || marks[0] != incidents.KindFirstOfferSent+":in_fire1" {
			t.Errorf("first-offer marks %v, want one for in_fire1", marks)
		}
	})
}
