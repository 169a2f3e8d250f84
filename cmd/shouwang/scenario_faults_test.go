package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/sms/twiliofake"
)

// Wave timers are durable: stop the service in the middle of a wave, start
// it again on the same data, and the waves still move on to escalation.
func TestScenarioRestartMidWave(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, func(c *Config) { c.WaveTimeout = 2 * time.Second })
		h.community("c1")
		h.responder("c1", person{"w1", "+8613800000031", []string{"medic"}, 300, true, true})
		resident := h.token("resident", "c1", "r1")
		alarm := h.press(resident, "k", "medical", centre)
		incident := h.incidentOf(resident, alarm)
		h.waitTexts("+8613800000031", 1, "回复 1 接受")
		stopped := time.Now()
		h.restart()
		h.waitTexts(centerPhone, 1, "无人接应")
		if time.Since(stopped) > 15*time.Second {
			t.Fatalf("escalated %s after the restart; the wave timer should fire about 2 s after it was set", time.Since(stopped))
		}
		inc := h.incident(testAdminToken, incident)
		if inc["status"] != "escalated" {
			t.Fatalf("status %v", inc["status"])
		}
	})
}

// A text that can never arrive moves the offer on: a number Twilio refuses
// at once, and a delivery receipt saying "undelivered".
func TestScenarioFailedDeliveryMovesOn(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		// Medical asks 3 per wave: the three nearest first.
		h.responder("c1", person{"a", "+8613800000041", []string{"medic"}, 100, true, true})
		h.responder("c1", person{"b", "+8613800000042", []string{"medic"}, 150, true, true})
		h.responder("c1", person{"c", "+8613800000043", []string{"medic"}, 200, true, true})
		h.responder("c1", person{"d", "+8613800000044", []string{"medic"}, 250, true, true})
		h.responder("c1", person{"e", "+8613800000045", []string{"medic"}, 300, true, true})
		resident := h.token("resident", "c1", "r1")

		// Twilio refuses a's texts for good (21211: not a valid number).
		h.twilio.FailTo("+8613800000041", 21211)
		incident := h.incidentOf(resident, h.press(resident, "k", "medical", centre))
		eventually(t, 10*time.Second, func() bool {
			return offersByResponder(h.incident(testAdminToken, incident))["d"] == "offered"
		}, says("a refused text did not move the offer on to d"))

		// A receipt says b's text, which did go out, never arrived.
		var sid string
		eventually(t, 10*time.Second, func() bool {
			if ms := h.twilio.MessagesTo("+8613800000042"); len(ms) == 1 {
				sid = ms[0].SID
			}
			return sid != ""
		}, says("b was not texted"))
		form := url.Values{"MessageSid": {sid}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}, "AccountSid": {twiliofake.AccountSID}}
		if st := h.webhook("/v1/webhooks/twilio/status", form, twiliofake.Sign(twiliofake.AuthToken, testPublicURL+"/v1/webhooks/twilio/status", form)); st != 204 {
			t.Fatalf("status webhook: %d", st)
		}
		h.waitTexts("+8613800000045", 1, "回复 1 接受")
		offers := offersByResponder(h.incident(testAdminToken, incident))
		failed := 0
		for _, st := range offers {
			if st == "failed" {
				failed++
			}
		}
		if failed != 2 || offers["a"] != "failed" || offers["b"] != "failed" || offers["d"] != "offered" || offers["e"] != "offered" {
			t.Fatalf("offers %v: want a and b failed, d and e offered", offers)
		}
		kinds := timelineKinds(h.incident(testAdminToken, incident))
		if count(kinds, "offer_failed") != 2 {
			t.Fatalf("timeline %v: want two offer_failed", kinds)
		}
	})
}

// Twilio answers 500 and 429 for a while: texts wait in the outbox, retry
// with backoff, and go out once each when it recovers.
func TestScenarioTwilioOutage(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	h.responder("c1", person{"a", "+8613800000051", []string{"medic"}, 100, true, true})
	h.responder("c1", person{"b", "+8613800000052", []string{"medic"}, 200, true, true})
	resident := h.token("resident", "c1", "r1")

	h.twilio.SetDown(503)
	incident := h.incidentOf(resident, h.press(resident, "k", "medical", centre))
	time.Sleep(1500 * time.Millisecond) // a few failed tries
	if n := len(h.twilio.Messages()); n != 0 {
		t.Fatalf("%d texts recorded while Twilio was down", n)
	}
	h.twilio.SetUp()
	h.twilio.FailNext(1, 429, 20429)
	h.waitTexts("+8613800000051", 1, "回复 1 接受")
	h.waitTexts("+8613800000052", 1, "回复 1 接受")
	time.Sleep(500 * time.Millisecond)
	for _, phone := range []string{"+8613800000051", "+8613800000052"} {
		if n := len(h.twilio.MessagesTo(phone)); n != 1 {
			t.Fatalf("%s got %d texts, want 1", phone, n)
		}
	}
	if offers := offersByResponder(h.incident(testAdminToken, incident)); offers["a"] != "offered" || offers["b"] != "offered" {
		t.Fatalf("an outage must not fail offers: %v", offers)
	}
	if !strings.Contains(h.twilio.MessagesTo("+8613800000051")[0].StatusCallback, testPublicURL+"/v1/webhooks/twilio/status") {
		t.Fatalf("texts should ask for receipts at the public URL, got %q", h.twilio.MessagesTo("+8613800000051")[0].StatusCallback)
	}
}
