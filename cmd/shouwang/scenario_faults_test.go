package main

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
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

// Twilio fails for a while with a mix of 500s, 429s and requests that hang
// past the client's timeout, and incidents are raised during it: texts wait
// in the outbox, retry with a backoff that spaces the tries out, and go out
// once each when Twilio recovers; no offer is failed for a transient outage.
// (TestScenarioFailedDeliveryMovesOn covers texts refused for good.)
func TestScenarioTwilioOutage(t *testing.T) {
	outage := 6 * time.Second
	if soak() {
		outage = time.Minute
	}
	h := start(t, "sqlite", func(c *Config) {
		// A hung request gives up after a second here; in production
		// after twilioSendTimeout (10 s).
		c.TwilioHTTPClient.Timeout = time.Second
		// Waves must not time out during the minute-long soak outage: what
		// is checked is that the outage itself fails no offer.
		c.WaveTimeout = 10 * time.Minute
	})
	h.community("c1")
	medics := []string{"+8613800000051", "+8613800000052", "+8613800000053"}
	for i, phone := range medics {
		h.responder("c1", person{fmt.Sprintf("m%d", i), phone, []string{"medic", "firefighting", "general"}, float64(100 * (i + 1)), true, true})
	}
	resident := h.token("resident", "c1", "r1")

	// Six equal phases: 500, 429, hang, 500, 429, hang.
	began := time.Now()
	modes := []string{"500", "429", "hang"}
	phase := func(i int) {
		h.twilio.SetUp()
		h.twilio.SetDelay(0)
		switch modes[i%3] {
		case "500":
			h.twilio.SetDown(500)
		case "429":
			h.twilio.SetDown(429)
		case "hang":
			h.twilio.SetDelay(time.Hour)
		}
	}
	phase(0)
	var incidents []string
	for i, typ := range []string{"medical", "fire", "other"} {
		// An incident at the start, a third and two thirds of the way in.
		time.Sleep(time.Until(began.Add(time.Duration(i) * outage / 3)))
		incidents = append(incidents, h.incidentOf(resident, h.press(resident, "k"+typ, typ, geo.Offset(centre, 0, float64(300*i)))))
	}
	for i := 1; i < 6; i++ {
		time.Sleep(time.Until(began.Add(time.Duration(i) * outage / 6)))
		phase(i)
	}
	time.Sleep(time.Until(began.Add(outage)))
	h.twilio.SetUp()
	h.twilio.SetDelay(0)
	recovered := time.Now()
	if n := len(h.twilio.Messages()); n != 0 {
		t.Fatalf("%d texts recorded while Twilio was down", n)
	}

	// Everything goes out once after the recovery: each medic gets the
	// offer of each incident, and no text twice.
	for _, phone := range medics {
		eventually(t, 45*time.Second, func() bool {
			return len(offerTexts(h.twilio.MessagesTo(phone))) == len(incidents)
		}, func() string {
			var offers []map[string]string
			for _, id := range incidents {
				offers = append(offers, offersByResponder(h.incident(testAdminToken, id)))
			}
			return fmt.Sprintf("%s got offers for %v after the outage, want %d incidents (offers %v; texts %q)", phone,
				offerTexts(h.twilio.MessagesTo(phone)), len(incidents), offers, h.textsTo(phone))
		})
	}
	allOut := time.Since(recovered)
	time.Sleep(time.Second) // a late retry would show now
	msgs := h.twilio.Messages()
	same, dup := map[string]int{}, 0
	for _, m := range msgs {
		if m.At.Before(recovered) {
			t.Errorf("a text was accepted during the outage: %q", m.Body)
		}
		if same[m.To+" "+m.Body]++; same[m.To+" "+m.Body] > 1 {
			dup++
			t.Errorf("sent twice: %s %q", m.To, m.Body)
		}
	}
	for _, phone := range medics {
		for k, n := range offerTexts(h.twilio.MessagesTo(phone)) {
			if n != 1 {
				t.Errorf("%s: %d offer texts, want 1", k, n)
			}
		}
	}
	offers, failed := 0, 0
	for _, id := range incidents {
		for who, st := range offersByResponder(h.incident(testAdminToken, id)) {
			offers++
			if st != "offered" {
				failed++
				t.Errorf("incident %s: offer to %s is %s; an outage must not fail offers", id, who, st)
			}
		}
	}

	// Backoff: a text queued at the start was tried a handful of times,
	// not hammered, and its tries spread out as the outage went on.
	tries := map[string][]time.Time{}
	for _, a := range h.twilio.Attempts() {
		if a.At.Before(recovered) {
			tries[a.To+" "+a.Body] = append(tries[a.To+" "+a.Body], a.At)
		}
	}
	// Waits of 250 ms doubling up to 30 s: 5 tries in 6 s, about 9 in a minute.
	limit := 6
	if soak() {
		limit = 12
	}
	most, spreading, early, late := 0, 0, 0, 0
	for text, at := range tries {
		most = max(most, len(at))
		if len(at) > limit {
			t.Errorf("%d tries in a %s outage for %s: no backoff", len(at), outage, text)
		}
		// Texts queued in the first phase show the backoff over the whole
		// outage: fewer tries in its second half than in its first.
		if at[0].Sub(began) < outage/6 {
			for _, x := range at {
				if x.Sub(began) < outage/2 {
					early++
				} else {
					late++
				}
			}
			spreading++
		}
	}
	if spreading == 0 || late >= early {
		t.Errorf("%d texts from the first phase were tried %d times in the outage's first half and %d in its second: the tries should thin out",
			spreading, early, late)
	}
	if !strings.Contains(h.twilio.MessagesTo(medics[0])[0].StatusCallback, testPublicURL+"/v1/webhooks/twilio/status") {
		t.Fatalf("texts should ask for receipts at the public URL, got %q", h.twilio.MessagesTo(medics[0])[0].StatusCallback)
	}
	attempts := len(h.twilio.Attempts())
	reportFault(t, faultRun{
		Fault: "Twilio outage", Store: "sqlite",
		Injected: fmt.Sprintf("%s of 500, 429 and hung requests (client timeout 1 s) in turn; 3 incidents raised during it", outage),
		Sent:     len(incidents), Accepted: len(incidents), DuplicateSMS: dup,
		Note: fmt.Sprintf("%d texts went out once each, all within %s of recovery; %d requests to Twilio in all, at most %d tries "+
			"for one text during the outage (texts queued at its start: %d tries in its first half, %d in its second); %d of %d offers failed",
			len(msgs), allOut.Round(100*time.Millisecond), attempts, most, early, late, failed, offers),
	})
}
