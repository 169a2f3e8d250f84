package sms_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// A bundle that failed to go out (the provider was down) and a new offer
// to the same phone: the next text lists all three offers, rendered, and
// the offers of the failed bundle now belong to it (receipts reach them).
// Folding the bundle as if it were one offer lost its offers and left
// "{type}" placeholders in the text.
func TestSenderRebundlesAFailedBundle(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		p := &provider{}
		s := newSender(db, newBus(t), p)
		s.Now = time.Now
		texts := map[string]string{"AAAA": "火灾", "BBBB": "急救", "CCCC": "燃气泄漏"}
		enq := func(ref string) (string, events.Event) {
			x := offerText("offer:in_"+ref+":rs_1", "of_"+ref)
			x.Params = map[string]string{"type": texts[ref], "address": "3号楼", "distance": "300米", "ref": ref, "link": "https://s.example/o/" + ref}
			ev, _ := enqueue(t, db, x)
			return outboxID(t, ev), ev
		}
		a, evA := enq("AAAA")
		b, _ := enq("BBBB")

		p.set(errors.New("provider down"))
		if err := s.Handle(ctx, evA); err == nil {
			t.Fatal("handle during an outage returned nil")
		}
		if q := get(t, db, a); q.Template != sms.TplOfferBundle || q.Status != sms.StatusPending {
			t.Fatalf("first row %+v, want a pending bundle", q)
		}
		c, evC := enq("CCCC")
		p.set(nil)
		if err := s.Handle(ctx, evC); err != nil {
			t.Fatal(err)
		}
		if len(p.sent) != 1 {
			t.Fatalf("%d texts, want one: %v", len(p.sent), p.sent)
		}
		body := p.sent[0].Body
		for _, want := range []string{"您有3个求助待回复", "[AAAA]", "[BBBB]", "[CCCC]", "火灾", "急救", "燃气泄漏"} {
			if !strings.Contains(body, want) {
				t.Errorf("text %q lacks %q", body, want)
			}
		}
		if strings.Contains(body, "{") {
			t.Errorf("text %q has unrendered placeholders", body)
		}
		for _, id := range []string{a, b} {
			if q := get(t, db, id); q.Status != sms.StatusBundled {
				t.Errorf("row %s is %s, want bundled into the text that went out", id, q.Status)
			}
		}
		var into string
		if err := db.QueryRow(ctx, `SELECT bundled_into FROM sms_outbox WHERE id = $1`, b).Scan(&into); err != nil || into != c {
			t.Errorf("offer B is bundled into %q (%v), want %s, the text that went out", into, err, c)
		}
	})
}
