package sms_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

func replyText(key, tpl string) sms.Text {
	return sms.Text{Key: key, To: medicPhone, Template: tpl, Purpose: "reply"}
}

// At most N texts a minute reach one phone; the next waits its turn.
func TestSenderPerRecipientLimit(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		sink := &sms.DevSink{DB: db, Now: time.Now}
		s := newSender(db, newBus(t), sink)
		s.Now = time.Now
		s.Carrier = sms.Carrier{PerRecipientPerMinute: 2}
		for i, tpl := range []string{sms.TplNoOpenOffer, sms.TplUnknownReply} {
			ev, _ := enqueue(t, db, replyText("r"+string(rune('a'+i)), tpl))
			if err := s.Handle(ctx, ev); err != nil {
				t.Fatalf("text %d: %v", i, err)
			}
		}
		ev, _ := enqueue(t, db, offerText("offer:in_x:rs_1", "of_9"))
		err := s.Handle(ctx, ev)
		if err == nil || !strings.Contains(err.Error(), "per-recipient limit") {
			t.Fatalf("third text in a minute: %v, want a per-recipient wait", err)
		}
		if q := get(t, db, outboxID(t, ev)); q.Status != sms.StatusPending {
			t.Fatalf("waiting text is %s, want pending", q.Status)
		}
		if sent, _ := sink.List(ctx, sms.ChannelSMS, medicPhone, 0); len(sent) != 2 {
			t.Fatalf("%d texts reached the phone, want 2", len(sent))
		}
	})
}

// The same words are not texted twice to one phone within the window.
func TestSenderSuppressesIdenticalText(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		sink := &sms.DevSink{DB: db, Now: time.Now}
		s := newSender(db, newBus(t), sink)
		s.Now = time.Now
		s.Carrier = sms.Carrier{IdenticalWindow: time.Hour}
		first, _ := enqueue(t, db, replyText("reply:SM1", sms.TplNoOpenOffer))
		second, _ := enqueue(t, db, replyText("reply:SM2", sms.TplNoOpenOffer))
		if err := s.Handle(ctx, first); err != nil {
			t.Fatal(err)
		}
		if err := s.Handle(ctx, second); err != nil {
			t.Fatal(err)
		}
		if q := get(t, db, outboxID(t, second)); q.Status != sms.StatusSuppressed {
			t.Fatalf("identical second text is %s, want suppressed", q.Status)
		}
		if sent, _ := sink.List(ctx, sms.ChannelSMS, medicPhone, 0); len(sent) != 1 {
			t.Fatalf("%d texts reached the phone, want 1", len(sent))
		}
	})
}

// The identical-text check finds earlier texts by a key of their words.
// Texts sent before the key existed (an upgrade within the window) count
// too, and other words to the same phone still go out.
func TestSenderSuppressesIdenticalTextSentBeforeAnUpgrade(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		sink := &sms.DevSink{DB: db, Now: time.Now}
		s := newSender(db, newBus(t), sink)
		s.Now = time.Now
		s.Carrier = sms.Carrier{IdenticalWindow: time.Hour}
		first, _ := enqueue(t, db, replyText("reply:SM1", sms.TplNoOpenOffer))
		if err := s.Handle(ctx, first); err != nil {
			t.Fatal(err)
		}
		// As a row written before migration 00011 looks.
		if _, err := db.Exec(ctx, `UPDATE sms_outbox SET body_key = 0 WHERE id = $1`, outboxID(t, first)); err != nil {
			t.Fatal(err)
		}
		other, _ := enqueue(t, db, replyText("reply:SM2", sms.TplUnknownReply))
		same, _ := enqueue(t, db, replyText("reply:SM3", sms.TplNoOpenOffer))
		for _, ev := range []events.Event{other, same} {
			if err := s.Handle(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if q := get(t, db, outboxID(t, other)); q.Status != sms.StatusSent {
			t.Errorf("a different text to the same phone is %s, want sent", q.Status)
		}
		if q := get(t, db, outboxID(t, same)); q.Status != sms.StatusSuppressed {
			t.Errorf("the same words as a text sent before the upgrade: %s, want suppressed", q.Status)
		}
		if sent, _ := sink.List(ctx, sms.ChannelSMS, medicPhone, 0); len(sent) != 2 {
			t.Errorf("%d texts reached the phone, want 2", len(sent))
		}
	})
}

// Several offers waiting for one person go out as one text listing them,
// each with its own link; the others are not sent again.
func TestSenderBundlesOffers(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		sink := &sms.DevSink{DB: db, Now: time.Now}
		s := newSender(db, newBus(t), sink)
		s.Now = time.Now
		a := offerText("offer:in_a:rs_1", "of_a")
		a.Params = map[string]string{"type": "火灾", "address": "3号楼", "distance": "300米", "ref": "AAAA", "link": "https://s.example/o/aaaa"}
		b := offerText("offer:in_b:rs_1", "of_b")
		b.Params = map[string]string{"type": "急救", "address": "5号楼", "distance": "120米", "ref": "BBBB", "link": "https://s.example/o/bbbb"}
		evA, _ := enqueue(t, db, a)
		evB, _ := enqueue(t, db, b)
		if err := s.Handle(ctx, evA); err != nil {
			t.Fatal(err)
		}
		if err := s.Handle(ctx, evB); err != nil {
			t.Fatal(err)
		}
		sent, _ := sink.List(ctx, sms.ChannelSMS, medicPhone, 0)
		if len(sent) != 1 {
			t.Fatalf("%d texts, want one bundle: %v", len(sent), sent)
		}
		for _, want := range []string{"您有2个求助待回复", "火灾", "https://s.example/o/aaaa", "急救", "https://s.example/o/bbbb"} {
			if !strings.Contains(sent[0].Body, want) {
				t.Errorf("bundle %q lacks %q", sent[0].Body, want)
			}
		}
		if q := get(t, db, outboxID(t, evB)); q.Status != sms.StatusBundled {
			t.Fatalf("second offer is %s, want bundled", q.Status)
		}
		if q := get(t, db, outboxID(t, evA)); q.Template != sms.TplOfferBundle || q.Status != sms.StatusSent {
			t.Fatalf("first offer row %+v, want the sent bundle", q)
		}
	})
}

// A voice text becomes a call with a keypad menu, recorded by the dev sink.
func TestSenderPlacesCalls(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		sink := &sms.DevSink{DB: db, Now: time.Now}
		s := newSender(db, newBus(t), sink)
		s.PublicURL = "https://s.example"
		call := offerText("call:of_1", "of_1")
		call.Template, call.Channel = sms.TplVoiceOffer, sms.ChannelVoice
		ev, _ := enqueue(t, db, call)
		if err := s.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
		calls, _ := sink.List(ctx, sms.ChannelVoice, medicPhone, 0)
		if len(calls) != 1 {
			t.Fatalf("%d calls", len(calls))
		}
		for _, want := range []string{`<Gather numDigits="1"`, `action="https://s.example/v1/webhooks/twilio/voice?offer=of_1"`,
			`<Say language="zh-CN">这里是守望社区应急。火灾求助`, "没有收到按键"} {
			if !strings.Contains(calls[0].Body, want) {
				t.Errorf("TwiML %q lacks %q", calls[0].Body, want)
			}
		}
		if texts, _ := sink.List(ctx, sms.ChannelSMS, medicPhone, 0); len(texts) != 0 {
			t.Fatalf("a call also went out as %d texts", len(texts))
		}
	})
}

// A provider that cannot call refuses voice texts for good rather than
// retrying forever.
func TestSenderWithoutCallsRefusesVoice(t *testing.T) {
	db := storagetest.SQLite(t)
	p := &provider{}
	s := newSender(db, newBus(t), p)
	call := offerText("call:of_2", "of_2")
	call.Template, call.Channel = sms.TplVoiceOffer, sms.ChannelVoice
	ev, _ := enqueue(t, db, call)
	if err := s.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if q := get(t, db, outboxID(t, ev)); q.Status != sms.StatusFailed {
		t.Fatalf("call through a text-only provider: %s, want failed", q.Status)
	}
}

// Two workers sending two offers to one phone at the same moment never
// wait on each other, and every offer goes out: on its own, or inside the
// other's text, never both and never neither.
func TestSenderConcurrentOffersToOnePhone(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		sink := &sms.DevSink{DB: db, Now: time.Now}
		s := newSender(db, newBus(t), sink)
		s.Now = time.Now
		for round := range 10 {
			a := offerText(fmt.Sprintf("offer:a%d", round), fmt.Sprintf("of_a%d", round))
			b := offerText(fmt.Sprintf("offer:b%d", round), fmt.Sprintf("of_b%d", round))
			evA, _ := enqueue(t, db, a)
			evB, _ := enqueue(t, db, b)
			errs := make(chan error, 2)
			for _, ev := range []events.Event{evA, evB} {
				go func() { errs <- s.Handle(ctx, ev) }()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			qa, qb := get(t, db, outboxID(t, evA)), get(t, db, outboxID(t, evB))
			sent := map[string]bool{sms.StatusSent: true}
			switch {
			case sent[qa.Status] && sent[qb.Status]:
			case sent[qa.Status] && qb.Status == sms.StatusBundled && qa.Template == sms.TplOfferBundle:
			case sent[qb.Status] && qa.Status == sms.StatusBundled && qb.Template == sms.TplOfferBundle:
			default:
				t.Fatalf("round %d: a %s (%s), b %s (%s)", round, qa.Status, qa.Template, qb.Status, qb.Template)
			}
		}
	})
}
