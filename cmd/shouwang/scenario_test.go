package main

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/sms/twiliofake"
)

// resident presses medical → nearest available certified medic gets an
// offer SMS → replies "1" through a signed webhook → the incident shows the
// assignment and the others are stood down.
func TestScenarioMedicAccepts(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		for _, p := range []person{
			{"near", "+8613800000001", []string{"medic"}, 100, true, true},
			{"mid", "+8613800000002", []string{"medic"}, 300, true, true},
			{"far", "+8613800000003", []string{"medic"}, 450, true, true},
			{"farther", "+8613800000004", []string{"medic"}, 480, true, true}, // fourth: not in a wave of 3
			{"expired", "+8613800000005", []string{"medic"}, 20, false, true},
			{"away", "+8613800000006", []string{"medic"}, 30, true, false},
			{"electrician", "+8613800000007", []string{"electrician"}, 10, true, true},
		} {
			h.responder("c1", p)
		}
		resident := h.token("resident", "c1", "resident-501")
		dispatcher := h.token("dispatcher", "c1", "")

		alarm := h.press(resident, "press-1", "medical", centre)
		// The same key again is the same alarm, and creates nothing new.
		if again := h.press(resident, "press-1", "medical", centre); again != alarm {
			t.Fatalf("retry with the same key gave alarm %s, first was %s", again, alarm)
		}
		incident := h.incidentOf(resident, alarm)

		offer := h.waitTexts("+8613800000001", 1, "回复 1 接受")[0]
		for _, want := range []string{"急救", "3栋2单元501", "100米"} {
			if !strings.Contains(offer, want) {
				t.Errorf("offer text %q lacks %q", offer, want)
			}
		}
		h.waitTexts("+8613800000002", 1, "回复 1 接受")
		h.waitTexts("+8613800000003", 1, "回复 1 接受")

		// Unsigned or wrongly signed replies are refused and change nothing.
		form := url.Values{"MessageSid": {"SMforged"}, "From": {"+8613800000002"}, "Body": {"1"}}
		if st := h.webhook("/v1/webhooks/twilio/sms", form, ""); st != 403 {
			t.Fatalf("unsigned webhook: %d, want 403", st)
		}
		if st := h.webhook("/v1/webhooks/twilio/sms", form, twiliofake.Sign("wrong-token", testPublicURL+"/v1/webhooks/twilio/sms", form)); st != 403 {
			t.Fatalf("badly signed webhook: %d, want 403", st)
		}

		if st := h.reply("+8613800000001", "1"); st != 200 {
			t.Fatalf("signed reply: status %d", st)
		}
		h.waitTexts("+8613800000001", 1, "已确认由您前往")
		h.waitTexts("+8613800000002", 1, "无需前往")
		h.waitTexts("+8613800000003", 1, "无需前往")

		inc := h.incident(dispatcher, incident)
		if inc["status"] != "responding" || inc["type"] != "medical" || inc["category"] != "public_health" || inc["severity"] != "IV" {
			t.Fatalf("incident after acceptance: %v", inc)
		}
		offers := offersByResponder(inc)
		want := map[string]string{"near": "accepted", "mid": "stood_down", "far": "stood_down"}
		for r, st := range want {
			if offers[r] != st {
				t.Errorf("offer to %s is %q, want %q (all: %v)", r, offers[r], st, offers)
			}
		}
		for _, never := range []string{"farther", "expired", "away", "electrician"} {
			if _, ok := offers[never]; ok {
				t.Errorf("%s should never have been asked: %v", never, offers)
			}
		}
		for _, phone := range []string{"+8613800000005", "+8613800000006", "+8613800000007"} {
			if texts := h.textsTo(phone); len(texts) != 0 {
				t.Errorf("%s got texts %q", phone, texts)
			}
		}
		kinds := timelineKinds(inc)
		for _, k := range []string{"opened", "dispatched", "offer_accepted", "stood_down"} {
			if count(kinds, k) != 1 {
				t.Errorf("timeline %v: want one %s", kinds, k)
			}
		}
		// The resident who pressed can follow their incident and sees who
		// is coming, not who declined; another resident cannot see it at all.
		mine := h.must(200, "GET", "/v1/incidents/"+incident, resident, nil)
		if got := offersByResponder(mine); len(got) != 1 || got["near"] != "accepted" {
			t.Errorf("resident sees offers %v, want only the accepted one", got)
		}
		h.must(404, "GET", "/v1/incidents/"+incident, h.token("resident", "c1", "someone-else"), nil)

		// A late "1" from a stood-down medic does not assign them.
		h.reply("+8613800000002", "1")
		h.waitTexts("+8613800000002", 1, "目前没有需要您回复的求助")
		if got := offersByResponder(h.incident(dispatcher, incident))["mid"]; got != "stood_down" {
			t.Fatalf("late yes changed the offer to %q", got)
		}

		// Resolving frees the medic and tells them.
		h.must(200, "POST", "/v1/incidents/"+incident+"/resolve", dispatcher, nil)
		h.waitTexts("+8613800000001", 1, "已处置完毕")
		r := h.must(200, "GET", "/v1/communities/c1/responders/near", dispatcher, nil)
		if r["busy_incident"] != nil {
			t.Fatalf("medic still busy after resolve: %v", r)
		}
		// Every text was sent exactly once.
		seen := map[string]int{}
		for _, m := range h.twilio.Messages() {
			seen[m.To+"|"+m.Body]++
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("text sent %d times: %s", n, k)
			}
		}
	})
}

// No one answers → the waves widen → the emergency center is texted.
func TestScenarioNobodyAnswersEscalates(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, func(c *Config) { c.WaveTimeout = 400 * time.Millisecond })
		h.community("c1")
		// Medical waves search 500 m, 1 km, 2 km.
		h.responder("c1", person{"w1", "+8613800000011", []string{"medic"}, 300, true, true})
		h.responder("c1", person{"w2", "+8613800000012", []string{"medic"}, 800, true, true})
		h.responder("c1", person{"w3", "+8613800000013", []string{"medic"}, 1800, true, true})
		h.responder("c1", person{"beyond", "+8613800000014", []string{"medic"}, 2500, true, true})
		resident := h.token("resident", "c1", "r1")
		dispatcher := h.token("dispatcher", "c1", "")

		incident := h.incidentOf(resident, h.press(resident, "k", "medical", centre))
		esc := h.waitTexts(centerPhone, 1, "无人接应")[0]
		if !strings.Contains(esc, "已联系3人") {
			t.Errorf("escalation text %q should say 3 were asked", esc)
		}
		inc := h.incident(dispatcher, incident)
		if inc["status"] != "escalated" {
			t.Fatalf("status %v, want escalated", inc["status"])
		}
		waves := map[string]float64{}
		for _, o := range inc["offers"].([]any) {
			m := o.(map[string]any)
			waves[m["responder"].(string)] = m["wave"].(float64)
			if m["status"] != "expired" {
				t.Errorf("offer to %s is %v, want expired", m["responder"], m["status"])
			}
		}
		if waves["w1"] != 1 || waves["w2"] != 2 || waves["w3"] != 3 || len(waves) != 3 {
			t.Fatalf("waves by responder %v: want w1→1, w2→2, w3→3 and nobody beyond 2 km", waves)
		}
		kinds := timelineKinds(inc)
		if count(kinds, "dispatched") != 3 || count(kinds, "escalated") != 1 || count(kinds, "wave_timeout") != 3 {
			t.Fatalf("timeline %v", kinds)
		}
		escalations := 0
		for _, tx := range h.textsTo(centerPhone) {
			if strings.Contains(tx, "无人接应") {
				escalations++
			}
		}
		if escalations != 1 {
			t.Fatalf("center got %d escalation texts, want 1: %q", escalations, h.textsTo(centerPhone))
		}
		// A late yes after escalation still brings help.
		h.reply("+8613800000012", "1")
		eventually(t, 5*time.Second, func() bool { return h.incident(dispatcher, incident)["status"] == "responding" },
			says("late acceptance did not make the incident responding"))
	})
}

// 200 presses for the same fire within a minute → one incident with 200
// reports, and no more offer SMS than one incident needs.
func TestScenarioAlarmStorm(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		for i := range 10 {
			h.responder("c1", person{fmt.Sprintf("ff%d", i), fmt.Sprintf("+86138000001%02d", i), []string{"firefighting"}, float64(50 + 40*i), true, true})
		}
		dispatcher := h.token("dispatcher", "c1", "")
		residents := make([]string, 20)
		for i := range residents {
			residents[i] = h.token("resident", "c1", fmt.Sprintf("res-%d", i))
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		alarms := map[string]bool{}
		for r, tok := range residents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 10 {
					// Neighbours press from around the burning building.
					where := geo.Offset(centre, float64((r*7+k*13)%60), float64((r*11+k*3)%60))
					id := h.press(tok, fmt.Sprintf("fire-%d", k), "fire", where)
					mu.Lock()
					alarms[id] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(alarms) != 200 {
			t.Fatalf("%d distinct alarms, want 200", len(alarms))
		}
		var list []any
		eventually(t, 20*time.Second, func() bool {
			out := h.must(200, "GET", "/v1/incidents?status=active", dispatcher, nil)
			list = out["incidents"].([]any)
			return len(list) == 1 && list[0].(map[string]any)["reports"].(float64) == 200
		}, func() string { return fmt.Sprintf("want one incident with 200 reports, got %v", list) })

		inc := h.incident(dispatcher, list[0].(map[string]any)["id"].(string))
		if n := len(inc["offers"].([]any)); n != 4 {
			t.Fatalf("%d offers, want one wave of 4 for a fire", n)
		}
		// Give the sender time to (wrongly) send more, then count.
		time.Sleep(300 * time.Millisecond)
		offerTexts := 0
		for _, m := range h.twilio.Messages() {
			if strings.Contains(m.Body, "回复 1 接受") {
				offerTexts++
			}
		}
		if offerTexts != 4 {
			t.Fatalf("%d offer texts, want 4", offerTexts)
		}
		if c := count(timelineKinds(inc), "report_added"); c != 199 {
			t.Fatalf("%d report_added on the timeline, want 199", c)
		}
	})
}
