package sms_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

func reminder(key, name string) sms.Text {
	return sms.Text{Key: key, Community: "xinhua", To: medicPhone, Purpose: "reminder", Bulk: true,
		Template: sms.TplCertExpiring, Params: map[string]string{"name": name, "cert": "救护员证", "date": "2027-01-01", "days": "60", "skill": "急救"}}
}

// A reminder is woken on its own subject, so the live sender never sees
// it; it keeps the outbox's key: queued twice, sent once.
func TestBulkTextsHaveTheirOwnSubject(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ev, queued := enqueue(t, db, reminder("cert:a", "王医生"))
		if !queued || ev.Subject != "sms.bulk.xinhua" || ev.Type != "sms.send" {
			t.Fatalf("reminder woken by %s on %s, want sms.send on sms.bulk.xinhua", ev.Type, ev.Subject)
		}
		if _, again := enqueue(t, db, reminder("cert:a", "王医生")); again {
			t.Fatal("the same reminder key was queued twice")
		}
		text := replyText("reply:SM1", sms.TplNoOpenOffer)
		text.Community = "xinhua"
		live, _ := enqueue(t, db, text)
		if live.Subject != "sms.send.xinhua" {
			t.Fatalf("a live text is woken on %s", live.Subject)
		}
	})
}

// The bulk sender leaves half of a phone's per-minute allowance to live
// texts: with 4 a minute, the third reminder waits while a live text
// still goes.
func TestBulkSenderLeavesRoomForLiveTexts(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		sink := &sms.DevSink{DB: db, Now: time.Now}
		bus := newBus(t)
		live := newSender(db, bus, sink)
		live.Now = time.Now
		live.Carrier = sms.Carrier{PerRecipientPerMinute: 4}
		live.Limiter = rate.NewLimiter(100, 1)
		bulk := *live
		bulk.Bulk = rate.NewLimiter(100, 1)
		for i, name := range []string{"甲", "乙"} {
			ev, _ := enqueue(t, db, reminder("cert:"+name, name))
			if err := bulk.Handle(ctx, ev); err != nil {
				t.Fatalf("reminder %d: %v", i, err)
			}
		}
		third, _ := enqueue(t, db, reminder("cert:丙", "丙"))
		if err := bulk.Handle(ctx, third); err == nil || !strings.Contains(err.Error(), "per-recipient limit") {
			t.Fatalf("third reminder in a minute: %v, want a per-recipient wait", err)
		}
		ev, _ := enqueue(t, db, replyText("reply:SM1", sms.TplNoOpenOffer))
		if err := live.Handle(ctx, ev); err != nil {
			t.Fatalf("live text after two reminders: %v", err)
		}
		if sent, _ := sink.List(ctx, sms.ChannelSMS, medicPhone, 0); len(sent) != 3 {
			t.Fatalf("%d texts reached the phone, want 2 reminders and the live text", len(sent))
		}
		if q := get(t, db, outboxID(t, third)); q.Status != sms.StatusPending {
			t.Fatalf("waiting reminder is %s, want pending", q.Status)
		}
	})
}

// A bulk text takes a token of the shared limiter only when one is free:
// while live texts hold the provider's whole rate, it waits.
func TestBulkSenderTakesOnlySpareCapacity(t *testing.T) {
	db := storagetest.SQLite(t)
	ctx := context.Background()
	sink := &sms.DevSink{DB: db, Now: time.Now}
	shared := rate.NewLimiter(5, 1)
	s := newSender(db, newBus(t), sink)
	s.Now = time.Now
	s.Limiter = shared
	s.Bulk = rate.NewLimiter(100, 1)
	// Live texts have reserved the next second of the provider's rate.
	for range 5 {
		shared.Reserve()
	}
	ev, _ := enqueue(t, db, reminder("cert:a", "王医生"))
	began := time.Now()
	if err := s.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(began); waited < 800*time.Millisecond {
		t.Fatalf("the reminder went out after %s, ahead of live texts holding the next second", waited)
	}
}
