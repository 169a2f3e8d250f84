package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/sms/twiliofake"
)

var linkToken = regexp.MustCompile(`/o/([A-Za-z0-9_-]{16})`)

// tokenIn finds the one-tap link token in a text.
func tokenIn(t testing.TB, text string) string {
	t.Helper()
	m := linkToken.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no one-tap link in %q", text)
	}
	return m[1]
}

// page fetches a link page; post presses one of its buttons (following the
// redirect back to the page, as a browser does).
func (h *harness) page(token string) (int, string) {
	h.t.Helper()
	resp, err := h.http.Get(h.base + "/o/" + token)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *harness) post(token, action string) (int, string) {
	h.t.Helper()
	resp, err := h.http.PostForm(h.base+"/o/"+token, url.Values{"action": {action}})
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// An offer accepted by its link, with no SMS reply; the same link used
// twice changes nothing the second time; "arrived" on the same page tells
// the resident who pressed.
func TestScenarioAcceptByLink(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.responder("c1", person{"m1", "+8613800000061", []string{"medic"}, 120, true, true})
		h.responder("c1", person{"m2", "+8613800000062", []string{"medic"}, 200, true, true})
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken,
			map[string]any{"id": "res-501", "name": "李奶奶", "phone": "+8613700000501", "address": "3栋2单元501", "vulnerable": "elderly_alone"})
		resident := h.token("resident", "c1", "res-501")
		incident := h.incidentOf(resident, h.press(resident, "k", "medical", centre))

		// The resident hears their press was received, with a link to cancel.
		received := h.waitTexts("+8613700000501", 1, "已收到您的急救求助")[0]
		if !strings.Contains(received, testPublicURL+"/o/") {
			t.Fatalf("received text %q lacks a link under the public URL", received)
		}
		offer := h.waitTexts("+8613800000061", 1, "接受或拒绝")[0]
		token := tokenIn(t, offer)
		status, body := h.page(token)
		if status != 200 || !strings.Contains(body, "接受，我去") || !strings.Contains(body, "3栋2单元501") || !strings.Contains(body, "120 米") {
			t.Fatalf("offer page %d:\n%s", status, body)
		}
		status, body = h.post(token, "accept")
		if status != 200 || !strings.Contains(body, "已确认由您前往") || strings.Contains(body, "接受，我去") {
			t.Fatalf("after accepting: %d\n%s", status, body)
		}
		inc := h.incident(testAdminToken, incident)
		if inc["status"] != "responding" || offersByResponder(inc)["m1"] != "accepted" || offersByResponder(inc)["m2"] != "stood_down" {
			t.Fatalf("after the link: %v %v", inc["status"], offersByResponder(inc))
		}
		h.waitTexts("+8613700000501", 1, "正在赶来")
		h.waitTexts("+8613800000062", 1, "无需前往")

		// The same link again: harmless, nothing changes, nothing more is
		// sent to the people an answer texts (plan duties go on meanwhile).
		h.waitTexts("+8613800000061", 1, "已确认")
		answerTexts := func() int {
			return len(h.textsTo("+8613800000061")) + len(h.textsTo("+8613800000062")) + len(h.textsTo("+8613700000501"))
		}
		textsBefore := answerTexts()
		if status, body := h.post(token, "accept"); status != 200 || !strings.Contains(body, "已确认由您前往") {
			t.Fatalf("second accept: %d\n%s", status, body)
		}
		if got := h.incident(testAdminToken, incident)["accepted"]; got != float64(1) {
			t.Fatalf("accepted = %v after the same link twice, want 1", got)
		}
		time.Sleep(300 * time.Millisecond)
		if after := answerTexts(); after != textsBefore {
			t.Fatalf("the second use sent %d more texts", after-textsBefore)
		}

		// On scene: the page now offers "arrived", and the resident is told.
		if _, body := h.page(token); !strings.Contains(body, "我已到达现场") {
			t.Fatalf("accepted offer page lacks the arrived button:\n%s", body)
		}
		h.post(token, "arrived")
		h.waitTexts("+8613700000501", 1, "已到达现场")
		if count(timelineKinds(h.incident(testAdminToken, incident)), "arrived") != 1 {
			t.Fatal("no arrival on the timeline")
		}
	})
}

// An expired or unknown link shows a clear page, not an error.
func TestScenarioExpiredLink(t *testing.T) {
	h := start(t, "sqlite", func(c *Config) { c.LinkTTL = 300 * time.Millisecond })
	h.community("c1")
	h.responder("c1", person{"m1", "+8613800000071", []string{"medic"}, 120, true, true})
	resident := h.token("resident", "c1", "r1")
	h.incidentOf(resident, h.press(resident, "k", "medical", centre))
	token := tokenIn(t, h.waitTexts("+8613800000071", 1, "接受或拒绝")[0])
	time.Sleep(400 * time.Millisecond)
	for _, tc := range []struct {
		token  string
		status int
		words  string
	}{
		{token, http.StatusGone, "链接已过期"},
		{"AAAAAAAAAAAAAAAA", http.StatusNotFound, "链接无效"},
	} {
		status, body := h.page(tc.token)
		if status != tc.status || !strings.Contains(body, tc.words) || !strings.Contains(body, "110 / 119 / 120") {
			t.Errorf("link %s: %d\n%s", tc.token, status, body)
		}
		if status, body := h.post(tc.token, "accept"); status != tc.status || !strings.Contains(body, tc.words) {
			t.Errorf("pressing a button on link %s: %d\n%s", tc.token, status, body)
		}
	}
}

// An unanswered offer turns into a call, and pressing 1 on the keypad
// accepts it.
func TestScenarioVoiceCallAccepts(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, func(c *Config) { c.VoiceAfter = 300 * time.Millisecond })
		h.community("c1")
		h.responder("c1", person{"m1", "+8613800000081", []string{"medic"}, 120, true, true})
		resident := h.token("resident", "c1", "r1")
		incident := h.incidentOf(resident, h.press(resident, "k", "medical", centre))
		h.waitTexts("+8613800000081", 1, "接受或拒绝")

		calls := h.twilio.WaitForCalls(t, 1, 10*time.Second)
		call := calls[0]
		if call.To != "+8613800000081" || !strings.Contains(call.Twiml, `<Say language="zh-CN">`) ||
			!strings.Contains(call.Twiml, `numDigits="1"`) || !strings.Contains(call.Twiml, "接受请按1") {
			t.Fatalf("call %+v", call)
		}
		m := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(call.Twiml)
		if m == nil || !strings.HasPrefix(m[1], testPublicURL+"/v1/webhooks/twilio/voice?offer=") {
			t.Fatalf("keypad action in %q", call.Twiml)
		}
		action := strings.ReplaceAll(m[1], "&amp;", "&")
		form := url.Values{"CallSid": {call.SID}, "Digits": {"1"}, "From": {testFrom}, "To": {call.To}, "AccountSid": {twiliofake.AccountSID}}
		path := strings.TrimPrefix(action, testPublicURL)

		// Unsigned keypad answers are refused.
		if st := h.webhook(path, form, ""); st != 403 {
			t.Fatalf("unsigned keypad webhook: %d", st)
		}
		req, _ := http.NewRequest("POST", h.base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twiliofake.Sign(twiliofake.AuthToken, action, form))
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		twiml, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(twiml), "已确认由您前往") {
			t.Fatalf("keypad answer: %d %s", resp.StatusCode, twiml)
		}
		inc := h.incident(testAdminToken, incident)
		if inc["status"] != "responding" || offersByResponder(inc)["m1"] != "accepted" {
			t.Fatalf("after pressing 1: %v %v", inc["status"], offersByResponder(inc))
		}
		if count(timelineKinds(inc), "offer_called") != 1 {
			t.Fatalf("timeline %v: want one offer_called", timelineKinds(inc))
		}
		if n := len(h.twilio.Calls()); n != 1 {
			t.Fatalf("%d calls, want 1", n)
		}
	})
}

// A resident's "我安全" stands everyone down.
func TestScenarioResidentSafe(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.responder("c1", person{"m1", "+8613800000091", []string{"medic"}, 120, true, true})
		h.responder("c1", person{"m2", "+8613800000092", []string{"medic"}, 150, true, true})
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken,
			map[string]any{"id": "res-1", "name": "王大爷", "phone": "+8613700000001", "address": "5栋101"})
		resident := h.token("resident", "c1", "res-1")
		incident := h.incidentOf(resident, h.press(resident, "k", "medical", centre))
		h.waitTexts("+8613800000091", 1, "接受或拒绝")
		h.waitTexts("+8613800000092", 1, "接受或拒绝")
		h.reply("+8613800000091", "1") // one is already on the way
		h.waitTexts("+8613800000091", 1, "已确认由您前往")

		if st := h.reply("+8613700000001", "我安全"); st != 200 {
			t.Fatalf("reply: %d", st)
		}
		h.waitTexts("+8613700000001", 1, "已取消您的求助")
		h.waitTexts("+8613800000091", 1, "已由求助人取消")
		inc := h.incident(testAdminToken, incident)
		if inc["status"] != "cancelled" {
			t.Fatalf("status %v, want cancelled", inc["status"])
		}
		if got := offersByResponder(inc); got["m1"] != "accepted" {
			t.Fatalf("offers %v", got)
		}
		// m2 had been stood down when m1 accepted; nobody stays busy.
		r := h.must(200, "GET", "/v1/communities/c1/responders/m1", testAdminToken, nil)
		if r["busy_incident"] != nil {
			t.Fatalf("m1 still busy: %v", r)
		}
		kinds := timelineKinds(inc)
		if count(kinds, "cancelled") != 1 {
			t.Fatalf("timeline %v", kinds)
		}
	})
}

// When neighbours pressed too, one resident's "safe" does not cancel their
// calls; it is noted.
func TestScenarioOneResidentSafeOthersStillNeedHelp(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	h.responder("c1", person{"f1", "+8613800000093", []string{"firefighting"}, 120, true, true})
	for _, r := range []struct{ id, phone string }{{"a", "+8613700000011"}, {"b", "+8613700000012"}} {
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken, map[string]any{"id": r.id, "name": "居民" + r.id, "phone": r.phone})
	}
	ta, tb := h.token("resident", "c1", "a"), h.token("resident", "c1", "b")
	incident := h.incidentOf(ta, h.press(ta, "k", "fire", centre))
	h.incidentOf(tb, h.press(tb, "k", "fire", centre))
	received := h.waitTexts("+8613700000011", 1, "已收到")[0]
	status, body := h.post(tokenIn(t, received), "safe")
	if status != 200 || !strings.Contains(body, "其他居民的求助仍在处理中") {
		t.Fatalf("safe by link: %d\n%s", status, body)
	}
	if st := h.incident(testAdminToken, incident)["status"]; st != "open" {
		t.Fatalf("status %v: another resident still needs help", st)
	}
}
