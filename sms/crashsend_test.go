package sms_test

import (
	"context"
	"testing"
	"time"

	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/sms/twiliofake"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// A process killed after Twilio took a text and before the outbox said so
// leaves the row claimed ("sending"). On redelivery the sender asks Twilio
// first: the medic gets the offer once, and the row ends sent with Twilio's
// sid. A claimed row Twilio never got is sent.
func TestSenderAsksTwilioBeforeResendingAfterACrash(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		fake := twiliofake.New(t)
		from := "+15005550006"
		tw := sms.NewTwilio(twiliofake.AccountSID, twiliofake.AuthToken, from, sms.WithHTTPClient(fake.Client()))
		s := newSender(db, newBus(t), tw)

		// What the dead process did: claim the row, hand the text to Twilio.
		ev, _ := enqueue(t, db, offerText("offer:in_fire1:rs_1", "of_1"))
		id := outboxID(t, ev)
		claim(t, db, id)
		sid, err := tw.Send(ctx, sms.Outgoing{To: medicPhone, Body: get(t, db, id).Body})
		if err != nil {
			t.Fatal(err)
		}
		// Another text to the same phone does not count as this one.
		other, _ := enqueue(t, db, offerText("offer:in_fire2:rs_1", "of_2"))
		if _, err := tw.Send(ctx, sms.Outgoing{To: medicPhone, Body: "【守望】别的短信"}); err != nil {
			t.Fatal(err)
		}
		claim(t, db, outboxID(t, other))

		if err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("handle the text Twilio had: %v", err)
		}
		if err := s.Handle(ctx, other); err != nil {
			t.Fatalf("handle the text Twilio never got: %v", err)
		}
		bodies := map[string]int{}
		for _, m := range fake.MessagesTo(medicPhone) {
			bodies[m.Body]++
		}
		if n := bodies[get(t, db, id).Body]; n != 1 {
			t.Errorf("the offer Twilio already had went out %d times in all, want 1", n)
		}
		if q := get(t, db, id); q.Status != sms.StatusSent || q.ProviderSID != sid {
			t.Errorf("recovered row = %+v, want sent with Twilio's sid %s", q, sid)
		}
		q := get(t, db, outboxID(t, other))
		if q.Status != sms.StatusSent || bodies[q.Body] != 1 {
			t.Errorf("claimed row Twilio never got: %+v, sent %d times; want sent once", q, bodies[q.Body])
		}
	})
}

// claim leaves a row as a sender that died mid-send leaves it.
func claim(t *testing.T, db storage.DB, id string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `UPDATE sms_outbox SET status = 'sending', attempts = attempts + 1 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
}

// Twilio takes a text but the answer never arrives in time: the sender
// cannot know whether it went out, so it keeps the row claimed and, on the
// retry, finds it in Twilio's list instead of texting the medic again.
func TestSenderTimeoutDoesNotTextTwice(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		fake := twiliofake.New(t)
		hc := fake.Client()
		hc.Timeout = 300 * time.Millisecond
		tw := sms.NewTwilio(twiliofake.AccountSID, twiliofake.AuthToken, "+15005550006", sms.WithHTTPClient(hc))
		s := newSender(db, newBus(t), tw)

		ev, _ := enqueue(t, db, offerText("offer:in_fire1:rs_1", "of_1"))
		id := outboxID(t, ev)
		fake.SetLateAnswer(time.Second)
		if err := s.Handle(ctx, ev); err == nil {
			t.Fatal("a send that timed out was taken as done")
		}
		if q := get(t, db, id); q.Status != sms.StatusSending {
			t.Fatalf("after a timeout the row is %q, want it still claimed (%q)", q.Status, sms.StatusSending)
		}
		fake.SetLateAnswer(0)
		if err := s.Handle(ctx, ev); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if n := len(fake.MessagesTo(medicPhone)); n != 1 {
			t.Errorf("the medic got %d texts, want 1", n)
		}
		if q := get(t, db, id); q.Status != sms.StatusSent || q.ProviderSID == "" {
			t.Errorf("row after the retry: %+v, want sent with Twilio's sid", q)
		}
	})
}
