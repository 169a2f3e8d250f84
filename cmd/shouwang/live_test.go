package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/sms/twiliofake"
)

// liveWithin is how soon a board must show a change after the request
// that made it returned.
const liveWithin = time.Second

// liveStream is an open GET /v1/stream, read as a browser's EventSource
// reads it: "event:" and "data:" lines, an empty line ends an event.
type liveStream struct {
	t      testing.TB
	name   string
	events chan map[string]any
	ended  chan struct{}
	cancel context.CancelFunc
}

// openStream opens a stream and returns once the service answered: from
// then on it is subscribed and misses nothing.
func openStream(t testing.TB, base, name, token, query string) *liveStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/stream"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req) // no timeout: a stream lasts
	if err != nil {
		cancel()
		t.Fatalf("open %s's stream: %v", name, err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Accel-Buffering") != "no" {
		resp.Body.Close()
		cancel()
		t.Fatalf("%s's stream: %d %v", name, resp.StatusCode, resp.Header)
	}
	s := &liveStream{t: t, name: name, events: make(chan map[string]any, 100), ended: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var event, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if event == "incident" {
					var ev map[string]any
					if err := json.Unmarshal([]byte(data), &ev); err != nil {
						t.Errorf("%s's stream sent an event that is not JSON: %q", name, data)
					}
					s.events <- ev
				}
				event, data = "", ""
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *liveStream) close() {
	s.cancel()
	<-s.ended
}

// waitFor returns the first event about incident (any incident when empty)
// named event, skipping others, or fails the test after within.
func (s *liveStream) waitFor(incident, event string, within time.Duration) map[string]any {
	s.t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	var skipped []string
	for {
		select {
		case ev := <-s.events:
			if ev["event"] == event && (incident == "" || ev["id"] == incident) {
				return ev
			}
			skipped = append(skipped, fmt.Sprint(ev["event"]))
		case <-s.ended:
			s.t.Fatalf("%s's stream ended while waiting for %s", s.name, event)
		case <-deadline.C:
			s.t.Fatalf("%s's stream: no %s event for %s within %v (got %v)", s.name, event, incident, within, skipped)
		}
	}
}

// quiet fails the test if the stream received any event, waiting a little
// for late ones.
func (s *liveStream) quiet(grace time.Duration) {
	s.t.Helper()
	select {
	case ev := <-s.events:
		s.t.Fatalf("%s's stream got an event it must not see: %v", s.name, ev)
	case <-time.After(grace):
	}
}

// A dispatcher watching the board sees an incident open, a responder
// accept, a duty acknowledged and the incident resolved, each within a
// second; so do the organisation and the resident who pressed, for their
// part. Another community's board shows none of it, and a resident cannot
// follow someone else's incident.
func TestLiveBoard(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.orgs("c1")
		h.community("c2")
		h.responder("c1", person{"m1", "+8613800000081", []string{"medic"}, 100, true, true})
		dispatcher := h.token("dispatcher", "c1", "d1")
		property := h.token("org", "c1", "c1-property")
		resident := h.token("resident", "c1", "res-501")
		elsewhere := h.token("dispatcher", "c2", "d2")

		board := openStream(t, h.base, "the c1 dispatcher", dispatcher, "")
		duties := openStream(t, h.base, "the property company", property, "")
		other := openStream(t, h.base, "the c2 dispatcher", elsewhere, "")

		alarm := h.press(resident, "k1", "medical", centre)
		opened := board.waitFor("", "opened", liveWithin)
		incident := h.incidentOf(resident, alarm)
		if opened["id"] != incident || opened["community"] != "c1" || opened["type"] != "medical" ||
			opened["status"] != "open" || opened["drill"] != false {
			t.Fatalf("opened event %v, want incident %s of c1, medical, open", opened, incident)
		}
		if at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(opened["at"])); err != nil || time.Since(at) > time.Minute {
			t.Fatalf("opened event at %v: %v", opened["at"], err)
		}
		mine := openStream(t, h.base, "the resident", resident, "?incident="+incident)
		h.must(404, "GET", "/v1/stream?incident="+incident, h.token("resident", "c1", "res-502"), nil)
		h.must(404, "GET", "/v1/stream?incident="+incident, elsewhere, nil)
		h.must(404, "GET", "/v1/stream?community=c1", elsewhere, nil)
		h.must(401, "GET", "/v1/stream", "", nil)

		link := tokenIn(t, h.waitTexts("+8613800000081", 1, "接受或拒绝")[0])
		if status, _ := h.post(link, "accept"); status != 200 {
			t.Fatalf("accept by link: %d", status)
		}
		if ev := board.waitFor(incident, "offer_accepted", liveWithin); ev["status"] != "responding" {
			t.Fatalf("offer_accepted event %v, want status responding", ev)
		}
		mine.waitFor(incident, "offer_accepted", liveWithin)

		var duty string
		eventually(t, 10*time.Second, func() bool {
			for _, d := range h.must(200, "GET", "/v1/duties?mine=1", property, nil)["duties"].([]any) {
				if m := d.(map[string]any); m["incident"] == incident && m["status"] == "assigned" {
					duty = m["id"].(string)
					return true
				}
			}
			return false
		}, says("the property company was given no duty"))
		h.must(200, "POST", "/v1/duties/"+duty+"/ack", property, nil)
		board.waitFor(incident, "duty_acknowledged", liveWithin)
		duties.waitFor(incident, "duty_acknowledged", liveWithin)

		h.must(200, "POST", "/v1/incidents/"+incident+"/resolve", dispatcher, nil)
		if ev := board.waitFor(incident, "resolved", liveWithin); ev["status"] != "resolved" {
			t.Fatalf("resolved event %v", ev)
		}
		mine.waitFor(incident, "resolved", liveWithin)
		other.quiet(200 * time.Millisecond)
	})
}

// The console's actions: the next wave now, a responder sent by hand, a
// false alarm, an incident that was a drill. Each is on the timeline with
// the dispatcher, and a closed incident cannot be acted on.
func TestConsoleActions(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.community("c2")
		for _, p := range []person{
			{"n1", "+8613800000091", []string{"medic"}, 100, true, true},
			{"n2", "+8613800000092", []string{"medic"}, 200, true, true},
			{"n3", "+8613800000093", []string{"medic"}, 300, true, true},
			{"far", "+8613800000094", []string{"medic"}, 800, true, true}, // medical wave 2 reaches 1 km
			{"helper", "+8613800000095", []string{"electrician"}, 50, true, true},
			{"fireman", "+8613800000096", []string{"firefighting"}, 150, true, true},
		} {
			h.responder("c1", p)
		}
		h.responder("c2", person{"c2-medic", "+8613800000097", []string{"medic"}, 100, true, true})
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken,
			map[string]any{"id": "res-501", "name": "李奶奶", "phone": "+8613700000501", "address": "3栋2单元501"})
		resident := h.token("resident", "c1", "res-501")
		dispatcher := h.token("dispatcher", "c1", "d1")
		board := openStream(t, h.base, "the dispatcher", dispatcher, "")

		medical := h.incidentOf(resident, h.press(resident, "k1", "medical", centre))
		for _, phone := range []string{"+8613800000091", "+8613800000092", "+8613800000093"} {
			h.waitTexts(phone, 1, "回复 1 接受")
		}
		act := func(want int, incident, action, token string, body any) map[string]any {
			t.Helper()
			return h.must(want, "POST", "/v1/incidents/"+incident+"/"+action, token, body)
		}

		// Who may act: the community's dispatchers and admins.
		org := h.token("org", "c1", "c1-center")
		for _, action := range []string{"redispatch", "assign", "false-alarm", "mark-drill"} {
			act(403, medical, action, org, map[string]any{"responder": "helper"})
			act(403, medical, action, resident, map[string]any{"responder": "helper"})
			act(404, medical, action, h.token("dispatcher", "c2", "d2"), map[string]any{"responder": "helper"})
			act(404, "in_nosuchincident", action, dispatcher, map[string]any{"responder": "helper"})
		}

		// Redispatch: nobody answered yet; the next wave goes out now.
		out := act(200, medical, "redispatch", dispatcher, nil)
		if out["wave"] != float64(2) {
			t.Fatalf("after redispatch: %v, want wave 2", out)
		}
		board.waitFor(medical, "redispatched", liveWithin)
		h.waitTexts("+8613800000094", 1, "回复 1 接受")
		inc := h.incident(dispatcher, medical)
		offers := offersByResponder(inc)
		for r, want := range map[string]string{"n1": "expired", "n2": "expired", "n3": "expired", "far": "offered"} {
			if offers[r] != want {
				t.Errorf("offer to %s is %q after redispatch, want %q (all: %v)", r, offers[r], want, offers)
			}
		}
		if e := entry(inc, "redispatched"); e == nil || e["actor"] != "dispatcher:c1:d1" {
			t.Errorf("timeline %v: want redispatched by dispatcher:c1:d1", timelineKinds(inc))
		}

		// Assign by hand: the helper was phoned and agreed.
		act(422, medical, "assign", dispatcher, map[string]any{"responder": "nobody"})
		act(422, medical, "assign", dispatcher, map[string]any{"responder": "c2-medic"})
		act(422, medical, "assign", dispatcher, map[string]any{})
		out = act(200, medical, "assign", dispatcher, map[string]any{"responder": "helper"})
		if o := out["offer"].(map[string]any); o["status"] != "accepted" || o["responder"] != "helper" {
			t.Fatalf("assigned offer %v", o)
		}
		if in := out["incident"].(map[string]any); in["status"] != "responding" || in["accepted"] != float64(1) {
			t.Fatalf("incident after assigning %v", in)
		}
		board.waitFor(medical, "assigned", liveWithin)
		confirm := h.waitTexts("+8613800000095", 1, "应急中心已安排您前往")[0]
		if !strings.Contains(confirm, "3栋2单元501") || !strings.Contains(confirm, testPublicURL+"/o/") {
			t.Errorf("assignment text %q lacks the address or a one-tap link", confirm)
		}
		h.waitTexts("+8613700000501", 1, "志愿者helper已接受您的求助")
		h.waitTexts("+8613800000094", 1, "无需前往") // medical needs one: the others stand down
		if r := h.must(200, "GET", "/v1/communities/c1/responders/helper", dispatcher, nil); r["busy_incident"] != medical {
			t.Fatalf("helper after assignment: %v, want busy with %s", r, medical)
		}
		act(200, medical, "assign", dispatcher, map[string]any{"responder": "helper"}) // twice changes nothing
		if n := len(h.waitTexts("+8613800000095", 1, "应急中心已安排您前往")); n != 1 {
			t.Errorf("helper texted %d times", n)
		}
		inc = h.incident(dispatcher, medical)
		if offersByResponder(inc)["helper"] != "accepted" || entry(inc, "assigned")["actor"] != "dispatcher:c1:d1" {
			t.Errorf("after assigning: offers %v, timeline %v", offersByResponder(inc), timelineKinds(inc))
		}

		// A busy responder cannot be sent elsewhere.
		fire := h.incidentOf(resident, h.press(resident, "k2", "fire", centre))
		h.waitTexts("+8613800000096", 1, "回复 1 接受")
		act(409, fire, "assign", dispatcher, map[string]any{"responder": "helper"})

		// False alarm, by an admin: cancelled, everyone stood down.
		out = act(200, fire, "false-alarm", testAdminToken, nil)
		if out["status"] != "cancelled" {
			t.Fatalf("after false alarm: %v", out)
		}
		if ev := board.waitFor(fire, "cancelled", liveWithin); ev["status"] != "cancelled" {
			t.Fatalf("cancelled event %v", ev)
		}
		h.waitTexts("+8613800000096", 1, "经核实为误报")
		inc = h.incident(dispatcher, fire)
		if e := entry(inc, "cancelled"); e == nil || e["actor"] != "admin::bootstrap" ||
			e["detail"].(map[string]any)["reason"] != "false_alarm" {
			t.Errorf("cancelled entry %v, want reason false_alarm by admin::bootstrap", e)
		}
		if offersByResponder(inc)["fireman"] != "stood_down" {
			t.Errorf("fireman's offer %v after false alarm", offersByResponder(inc))
		}
		for _, action := range []string{"redispatch", "false-alarm", "mark-drill"} {
			act(409, fire, action, dispatcher, nil)
		}
		act(409, fire, "assign", dispatcher, map[string]any{"responder": "fireman"})

		// It was a drill: left out of statistics, ended, the helper freed.
		out = act(200, medical, "mark-drill", dispatcher, nil)
		if out["drill"] != true || out["status"] != "cancelled" {
			t.Fatalf("after mark-drill: %v", out)
		}
		if ev := board.waitFor(medical, "cancelled", liveWithin); ev["drill"] != true {
			t.Fatalf("cancelled event of a drill %v", ev)
		}
		h.waitTexts("+8613800000095", 1, "【演练】【守望】急救求助（3栋2单元501）已结束")
		if r := h.must(200, "GET", "/v1/communities/c1/responders/helper", dispatcher, nil); r["busy_incident"] != nil {
			t.Fatalf("helper still busy after the drill ended: %v", r)
		}
		inc = h.incident(dispatcher, medical)
		if entry(inc, "marked_drill")["actor"] != "dispatcher:c1:d1" || entry(inc, "cancelled")["detail"].(map[string]any)["reason"] != "drill" {
			t.Errorf("timeline after mark-drill %v", inc["timeline"])
		}
		if ids := incidentIDs(h.must(200, "GET", "/v1/incidents?drills=exclude", dispatcher, nil)); ids[medical] || !ids[fire] {
			t.Errorf("drills=exclude lists %v: want the false alarm, not the drill", ids)
		}
		if ids := incidentIDs(h.must(200, "GET", "/v1/incidents?drills=only", dispatcher, nil)); !ids[medical] || len(ids) != 1 {
			t.Errorf("drills=only lists %v: want only %s", ids, medical)
		}
		act(409, medical, "redispatch", dispatcher, nil)
	})
}

// "我安全了" on the resident page: from the only one who called, it
// cancels and stands everyone down; when others called too, it is only
// noted.
func TestResidentSafeOnPage(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.responder("c1", person{"m1", "+8613800000081", []string{"medic"}, 100, true, true})
		for _, r := range []struct{ id, phone string }{{"res-501", "+8613700000501"}, {"res-502", "+8613700000502"}} {
			h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken,
				map[string]any{"id": r.id, "name": "居民" + r.id, "phone": r.phone, "address": "3栋2单元501"})
		}
		first, second := h.token("resident", "c1", "res-501"), h.token("resident", "c1", "res-502")
		safe := func(want int, incident, token string) map[string]any {
			t.Helper()
			return h.must(want, "POST", "/v1/incidents/"+incident+"/safe", token, nil)
		}

		alone := h.incidentOf(first, h.press(first, "k1", "medical", centre))
		h.waitTexts("+8613800000081", 1, "回复 1 接受")
		safe(404, alone, second) // not theirs
		safe(403, alone, h.token("dispatcher", "c1", "d1"))
		board := openStream(t, h.base, "the dispatcher", h.token("dispatcher", "c1", "d1"), "")
		out := safe(200, alone, first)
		if out["outcome"] != "cancelled" || out["incident"].(map[string]any)["status"] != "cancelled" {
			t.Fatalf("safe from the only caller: %v", out)
		}
		board.waitFor(alone, "cancelled", liveWithin)
		h.waitTexts("+8613700000501", 1, "已取消您的求助")
		h.waitTexts("+8613800000081", 1, "已由求助人取消")
		safe(409, alone, first)

		shared := h.incidentOf(first, h.press(first, "k2", "flood", centre))
		if again := h.incidentOf(second, h.press(second, "k3", "flood", geo.Offset(centre, 20, 0))); again != shared {
			t.Fatalf("the second press opened %s, want it joined to %s", again, shared)
		}
		out = safe(200, shared, second)
		if out["outcome"] != "safe_noted" || out["incident"].(map[string]any)["status"] == "cancelled" {
			t.Fatalf("safe with another caller: %v", out)
		}
		board.waitFor(shared, "reporter_safe", liveWithin)
		h.waitTexts("+8613700000502", 1, "已记录您安全")
	})
}

// Stopping the service while a board is open ends the stream at once:
// shutdown does not wait for it.
func TestStreamEndsOnShutdown(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		cfg := testConfig(t, store)
		cfg.TwilioHTTPClient = twiliofake.New(t).Client()
		svc, err := Start(context.Background(), cfg, testLogger(t))
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		board := openStream(t, "http://"+svc.Addr, "the admin", testAdminToken, "")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		began := time.Now()
		if err := svc.Close(ctx); err != nil {
			t.Fatalf("close with a stream open: %v", err)
		}
		if took := time.Since(began); took > 3*time.Second {
			t.Fatalf("close took %v with a stream open", took)
		}
		select {
		case <-board.ended:
		case <-time.After(2 * time.Second):
			t.Fatal("the stream did not end when the service stopped")
		}
	})
}

// entry returns the first timeline entry of a kind, or nil.
func entry(inc map[string]any, kind string) map[string]any {
	for _, e := range inc["timeline"].([]any) {
		if m := e.(map[string]any); m["kind"] == kind {
			return m
		}
	}
	return nil
}

func incidentIDs(list map[string]any) map[string]bool {
	out := map[string]bool{}
	for _, in := range list["incidents"].([]any) {
		out[in.(map[string]any)["id"].(string)] = true
	}
	return out
}
