package main

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/sms/twiliofake"
)

// communityNumber is the number residents of c1 text to raise an alarm.
const communityNumber = "+8610690000110"

// text posts a text to the community number through the signed webhook,
// with the message id Twilio gave it (a redelivery reuses it).
func (h *harness) text(sid, from, to, body string) {
	h.t.Helper()
	const path = "/v1/webhooks/twilio/sms"
	form := url.Values{"MessageSid": {sid}, "From": {from}, "To": {to}, "Body": {body}, "AccountSid": {twiliofake.AccountSID}}
	if st := h.webhook(path, form, twiliofake.Sign(twiliofake.AuthToken, testPublicURL+path, form)); st != 200 {
		h.t.Fatalf("webhook for %q from %s: status %d", body, from, st)
	}
}

func newSID() string { return fmt.Sprintf("SM%032x", time.Now().UnixNano()) }

// activeIncidents lists what a dispatcher of the community sees as active.
func (h *harness) activeIncidents(dispatcher string) []map[string]any {
	h.t.Helper()
	var out []map[string]any
	for _, in := range h.must(200, "GET", "/v1/incidents?status=active", dispatcher, nil)["incidents"].([]any) {
		out = append(out, in.(map[string]any))
	}
	return out
}

// quietly waits long enough for anything still in flight to arrive.
func quietly() { time.Sleep(700 * time.Millisecond) }

// A registered resident texts "火" → a fire incident at their registered
// address and location → the nearest firefighter gets the offer, the
// resident one confirmation with the address. The same webhook delivered
// again (same MessageSid) changes nothing.
func TestScenarioSMSFireFromResident(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.must(200, "PATCH", "/v1/communities/c1", testAdminToken, map[string]any{"sms_number": communityNumber})
		home := geo.Offset(centre, 300, 0)
		h.responder("c1", person{"f1", "+8613800000701", []string{"firefighting"}, 380, true, true})
		h.responder("c1", person{"m1", "+8613800000702", []string{"medic"}, 310, true, true})
		const phone = "+8613700000701"
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken,
			map[string]any{"id": "res-701", "name": "陈阿姨", "phone": phone, "address": "7栋1单元302", "location": home})
		dispatcher := h.token("dispatcher", "c1", "")

		sid := newSID()
		h.text(sid, phone, communityNumber, "火")
		h.text(sid, phone, communityNumber, "火") // Twilio retried the webhook

		offer := h.waitTexts("+8613800000701", 1, "火灾求助")[0]
		if !strings.Contains(offer, "7栋1单元302") || !strings.Contains(offer, "80米") {
			t.Fatalf("firefighter's offer %q lacks the address or the distance from the resident's home", offer)
		}
		confirm := h.waitTexts(phone, 1, "已收到您的火灾报警")[0]
		if !strings.Contains(confirm, "地址：7栋1单元302") || !strings.Contains(confirm, testPublicURL+"/o/") {
			t.Fatalf("confirmation %q lacks the registered address or the link to cancel", confirm)
		}

		list := h.activeIncidents(dispatcher)
		if len(list) != 1 {
			t.Fatalf("%d active incidents, want one: %v", len(list), list)
		}
		inc := h.incident(dispatcher, list[0]["id"].(string))
		loc := inc["location"].(map[string]any)
		if inc["type"] != "fire" || inc["address"] != "7栋1单元302" || inc["reports"] != float64(1) ||
			math.Abs(loc["lat"].(float64)-home.Lat) > 1e-9 || math.Abs(loc["lng"].(float64)-home.Lng) > 1e-9 {
			t.Fatalf("incident %v at %v, want one fire report at the resident's home %v", inc["type"], loc, home)
		}
		if got := offersByResponder(inc); got["f1"] != "offered" || got["m1"] != "" {
			t.Fatalf("offers %v: the firefighter, not the medic", got)
		}
		opened := inc["timeline"].([]any)[0].(map[string]any)
		if detail := opened["detail"].(map[string]any); detail["note"] != "短信报警：火" {
			t.Fatalf("the dispatcher does not see the words texted: %v", opened)
		}

		// Redelivered once more, long after: still one alarm, one text.
		h.text(sid, phone, communityNumber, "火")
		quietly()
		if n := len(h.activeIncidents(dispatcher)); n != 1 {
			t.Fatalf("%d active incidents after the webhook came three times", n)
		}
		if got := h.textsTo(phone); len(got) != 1 {
			t.Fatalf("resident got %d texts, want one confirmation: %q", len(got), got)
		}
		if got := h.textsTo("+8613800000701"); len(got) != 1 {
			t.Fatalf("firefighter got %d texts, want one offer: %q", len(got), got)
		}
	})
}

// A responder who is also a resident has an open offer: their "1" accepts
// it, as it always has; it raises no alarm.
func TestScenarioSMSOneStillAcceptsAnOffer(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.must(200, "PATCH", "/v1/communities/c1", testAdminToken, map[string]any{"sms_number": communityNumber})
		const medic, caller = "+8613800000711", "+8613700000711"
		h.responder("c1", person{"m1", medic, []string{"medic"}, 120, true, true})
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken,
			map[string]any{"id": "m1-home", "name": "志愿者m1", "phone": medic, "address": "1栋101", "location": geo.Offset(centre, 120, 0)})
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken,
			map[string]any{"id": "res-711", "name": "赵先生", "phone": caller, "address": "2栋202", "location": centre})
		dispatcher := h.token("dispatcher", "c1", "")

		h.text(newSID(), caller, communityNumber, "救命！")
		h.waitTexts(caller, 1, "已收到您的求助报警")
		h.waitTexts(medic, 1, "回复 1 接受")
		h.text(newSID(), medic, communityNumber, "1")
		h.waitTexts(medic, 1, "已确认由您前往")

		list := h.activeIncidents(dispatcher)
		if len(list) != 1 {
			t.Fatalf("%d active incidents, want only the caller's: %v", len(list), list)
		}
		inc := h.incident(dispatcher, list[0]["id"].(string))
		if inc["type"] != "other" || inc["status"] != "responding" || offersByResponder(inc)["m1"] != "accepted" {
			t.Fatalf("incident %v %v, offers %v: want the help call accepted by m1", inc["type"], inc["status"], offersByResponder(inc))
		}
		quietly()
		for _, body := range h.textsTo(medic) {
			if strings.Contains(body, "报警") {
				t.Fatalf("the medic's \"1\" was taken as an alarm: %q", body)
			}
		}
	})
}

// A number nobody registered texts "救命" to the second community's
// number: it is told to call 110/119/120, that community's emergency
// center gets the number to call back, and a second text within the hour
// gets no second answer. Logs show the number only masked.
func TestScenarioSMSUnregisteredNumber(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		var logs lockedBuffer
		h := startLogged(t, store, &logs, nil)
		h.community("c1")
		h.must(200, "PATCH", "/v1/communities/c1", testAdminToken, map[string]any{"sms_number": communityNumber})
		const c2Number, c2Center = "+8610690000220", "+8613900009220"
		h.must(201, "POST", "/v1/communities", testAdminToken,
			map[string]any{"id": "c2", "name": "第二社区", "location": geo.Offset(centre, 5000, 0), "sms_number": c2Number})
		h.must(201, "POST", "/v1/communities/c2/organisations", testAdminToken,
			map[string]any{"id": "c2-center", "kind": "emergency_center", "name": "第二社区应急中心", "duty_phone": c2Center})
		if got := h.must(200, "GET", "/v1/communities/c2", testAdminToken, nil)["sms_number"]; got != c2Number {
			t.Fatalf("sms_number = %v", got)
		}
		status, out := h.call("PATCH", "/v1/communities/c2", testAdminToken, map[string]any{"sms_number": "10690000220"})
		if _, fields := errorOf(t, "PATCH sms_number", out); status != 422 || fields["sms_number"] == nil {
			t.Fatalf("a number without +country code: %d %v", status, out)
		}
		const stranger = "+8613655550001"

		h.text(newSID(), stranger, c2Number, "救命")
		reply := h.waitTexts(stranger, 1, "110")[0]
		for _, want := range []string{"未登记", "110（报警）", "119（火警）", "120（急救）"} {
			if !strings.Contains(reply, want) {
				t.Fatalf("reply %q lacks %q", reply, want)
			}
		}
		notice := h.waitTexts(c2Center, 1, stranger)[0]
		if !strings.Contains(notice, "“救命”") || !strings.Contains(notice, "回电") {
			t.Fatalf("center notice %q", notice)
		}

		h.text(newSID(), stranger, c2Number, "火")
		quietly()
		if got := h.textsTo(stranger); len(got) != 1 {
			t.Fatalf("the stranger got %d texts within the hour, want 1: %q", len(got), got)
		}
		if got := h.textsTo(c2Center); len(got) != 1 {
			t.Fatalf("the center got %d notices, want 1: %q", len(got), got)
		}
		if got := h.textsTo(centerPhone); len(got) != 0 {
			t.Fatalf("the other community's center was texted: %q", got)
		}
		if got := h.activeIncidents(testAdminToken); len(got) != 0 {
			t.Fatalf("a stranger's text opened incidents: %v", got)
		}
		if text := logs.String(); strings.Contains(text, stranger) || strings.Contains(text, strings.TrimPrefix(stranger, "+")) {
			t.Fatalf("log has the stranger's full number:\n%s", text)
		}
	})
}

// Full-width "ＨＥＬＰ" from a resident registered with an address only:
// a help incident at the community's centre with their address, confirmed
// in their language. A resident's sentence is answered with the keywords.
// With one community and no SMS number set, a stranger's text still reaches
// its center.
func TestScenarioSMSFullWidthHelpAddressOnly(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.responder("c1", person{"g1", "+8613800000721", []string{"medic"}, 100, true, true})
		const phone = "+8613700000721"
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken,
			map[string]any{"id": "res-721", "name": "Anna", "phone": phone, "address": "9栋1801", "locale": "en"})
		dispatcher := h.token("dispatcher", "c1", "")

		h.text(newSID(), phone, testFrom, "ＨＥＬＰ")
		confirm := h.waitTexts(phone, 1, "alarm was received")[0]
		if !strings.Contains(confirm, "for 9栋1801") {
			t.Fatalf("confirmation %q lacks the address", confirm)
		}
		h.waitTexts("+8613800000721", 1, "9栋1801")
		list := h.activeIncidents(dispatcher)
		if len(list) != 1 || list[0]["type"] != "other" || list[0]["address"] != "9栋1801" {
			t.Fatalf("active incidents %v: want one help call at 9栋1801", list)
		}
		if loc := list[0]["location"].(map[string]any); loc["lat"] != centre.Lat || loc["lng"] != centre.Lng {
			t.Fatalf("location %v: without a registered location the community's centre", loc)
		}

		h.text(newSID(), phone, testFrom, "there is smoke downstairs")
		h.waitTexts(phone, 1, "Text not understood")

		const stranger = "+8613655550002"
		h.text(newSID(), stranger, testFrom, "HELP")
		h.waitTexts(stranger, 1, "call 110 (police), 119 (fire) or 120 (ambulance)")
		h.waitTexts(centerPhone, 1, stranger)
		if n := len(h.activeIncidents(dispatcher)); n != 1 {
			t.Fatalf("%d active incidents: texts that are no alarm opened some", n)
		}
	})
}
