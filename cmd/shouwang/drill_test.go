package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/schedule"
	"github.com/shouwang/shouwang/sms"
)

const (
	teamAPhone         = "+8613900001001"
	teamBPhone         = "+8613900001002"
	drillPropertyPhone = "+8613900002003"
	drillOwnersPhone   = "+8613900002004"
	inScope1Phone      = "+8613800003001"
	inScope2Phone      = "+8613800003002"
	otherTeamPhone     = "+8613800003003"
	proPhone           = "+8613800003004"
)

// drillCommunity registers a community with two volunteer teams, a
// property company, an owners' committee, two firefighters in team A, one
// in team B and a professional nearer than all of them.
func drillCommunity(h *harness) {
	h.t.Helper()
	h.community("c1")
	for _, o := range []map[string]any{
		{"id": "team-a", "kind": "volunteer_team", "name": "A 队", "duty_phone": teamAPhone},
		{"id": "team-b", "kind": "volunteer_team", "name": "B 队", "duty_phone": teamBPhone},
		{"id": "property", "kind": "property_company", "name": "物业", "duty_phone": drillPropertyPhone},
		{"id": "owners", "kind": "owners_committee", "name": "业委会", "duty_phone": drillOwnersPhone},
	} {
		h.must(201, "POST", "/v1/communities/c1/organisations", testAdminToken, o)
	}
	cert := []map[string]any{{"skill": "firefighting", "name": "消防证", "expires_at": time.Now().AddDate(1, 0, 0)}}
	for _, r := range []struct {
		id, phone, team, kind string
		north                 float64
	}{
		{"a1", inScope1Phone, "team-a", "volunteer", 100},
		{"a2", inScope2Phone, "team-a", "volunteer", 200},
		{"b1", otherTeamPhone, "team-b", "volunteer", 50},
		{"pro", proPhone, "", "professional", 10},
	} {
		h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken, map[string]any{
			"id": r.id, "name": "队员" + r.id, "phone": r.phone, "skills": []string{"firefighting"}, "certificates": cert,
			"team": r.team, "kind": r.kind, "location": geo.Offset(centre, r.north, 0), "available": true})
	}
}

func report(h *harness, token, drill string) map[string]any {
	h.t.Helper()
	var rep map[string]any
	eventually(h.t, 10*time.Second, func() bool {
		code, body := h.call("GET", "/v1/drills/"+drill+"/report", token, nil)
		rep = body
		return code == 200
	}, says("drill %s has no report: %v", drill, rep))
	return rep
}

func num(v any) float64 { f, _ := v.(float64); return f }

// A fire drill for team A and the owners' committee: only they are
// contacted, every text says 【演练】, and the report has the numbers.
func TestDrillRunsThePipelineWithinItsScope(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		drillCommunity(h)
		dispatcher := h.token("dispatcher", "c1", "d1")

		// Bad drills are refused with the field named.
		code, body := h.call("POST", "/v1/communities/c1/drills/run", dispatcher, map[string]any{"type": "fire"})
		if code != 422 || !strings.Contains(fmt.Sprint(body), "scope") {
			t.Fatalf("a drill without scope: %d %v, want 422 naming scope", code, body)
		}
		code, body = h.call("POST", "/v1/communities/c1/drills/run", dispatcher, map[string]any{"type": "fire",
			"scope": map[string]any{"teams": []string{"team-x"}}, "time_limit": "3d"})
		if code != 422 || !strings.Contains(fmt.Sprint(body), "time_limit") {
			t.Fatalf("a drill with a bad limit: %d %v, want 422 naming time_limit", code, body)
		}

		dr := h.must(201, "POST", "/v1/communities/c1/drills/run", dispatcher, map[string]any{"key": "k1", "type": "fire",
			"scope":  map[string]any{"teams": []string{"team-a"}, "organisations": []string{"owners_committee"}},
			"notice": "本次为消防演练，请勿惊慌", "time_limit": "30m"})
		again := h.must(201, "POST", "/v1/communities/c1/drills/run", dispatcher, map[string]any{"key": "k1", "type": "fire",
			"scope": map[string]any{"teams": []string{"team-a"}, "organisations": []string{"owners_committee"}}})
		if again["id"] != dr["id"] {
			t.Fatalf("the same key started a second drill: %v and %v", dr["id"], again["id"])
		}
		drill, incident := dr["id"].(string), dr["incident"].(string)

		h.waitTexts(inScope1Phone, 1, sms.DrillPrefix)
		h.waitTexts(inScope2Phone, 1, sms.DrillPrefix)
		h.waitTexts(centerPhone, 1, "演练开始")
		h.waitTexts(teamAPhone, 1, sms.DrillPrefix)
		h.reply(inScope1Phone, "1")
		h.waitTexts(inScope1Phone, 2, sms.DrillPrefix)
		h.reply(teamAPhone, "完成") // team A guided the evacuation
		h.waitTexts(drillOwnersPhone, 1, sms.DrillPrefix)

		inc := h.incident(dispatcher, incident)
		if inc["drill"] != true {
			t.Fatalf("the drill's incident is not flagged: %v", inc["drill"])
		}
		// Statistics leave drills out; the board can show them, marked.
		if live := h.must(200, "GET", "/v1/incidents?drills=exclude", dispatcher, nil)["incidents"].([]any); len(live) != 0 {
			t.Errorf("real incidents only: got %d, want none", len(live))
		}
		if only := h.must(200, "GET", "/v1/incidents?drills=only", dispatcher, nil)["incidents"].([]any); len(only) != 1 {
			t.Errorf("drills only: got %d, want the drill", len(only))
		}
		h.must(200, "POST", "/v1/incidents/"+incident+"/resolve", dispatcher, nil)
		rep := report(h, dispatcher, drill)

		if rep["time_to_first_accept_s"] == nil {
			t.Errorf("report has no time to first accept: %v", rep)
		}
		waves := rep["waves"].([]any)
		w1 := waves[0].(map[string]any)
		if len(waves) != 1 || num(w1["offered"]) != 2 || num(w1["accepted"]) != 1 || num(w1["accept_rate"]) != 0.5 {
			t.Errorf("waves = %v, want one wave: 2 offered, 1 accepted", waves)
		}
		if never := fmt.Sprint(rep["never_answered"]); never != "[队员a2]" {
			t.Errorf("never answered = %s, want [队员a2]", never)
		}
		duties := rep["duties"].(map[string]any)
		outcomes := map[string]string{}
		for _, it := range duties["items"].([]any) {
			d := it.(map[string]any)
			outcomes[d["assignee"].(string)] = d["outcome"].(string)
		}
		want := map[string]string{"emergency_center": "not_done", "property_company": "skipped", "volunteer_team": "on_time",
			"police_office": "not_done", "health_station": "not_done", "owners_committee": "not_done"}
		if fmt.Sprint(outcomes) != fmt.Sprint(want) {
			t.Errorf("duty outcomes = %v, want %v", outcomes, want)
		}
		if num(duties["on_time"]) != 1 || num(duties["skipped"]) != 1 || num(duties["total"]) != 6 {
			t.Errorf("duty counts = %v", duties)
		}
		summary := h.waitTexts(centerPhone, 1, "演练结束")
		if !strings.Contains(summary[0], "接受率 50%") || !strings.Contains(summary[0], "1 人未回复") ||
			!strings.Contains(summary[0], "/console/drills/"+drill) {
			t.Errorf("center summary = %q", summary[0])
		}

		// Nobody outside the scope heard anything, and every text was marked.
		for _, phone := range []string{otherTeamPhone, proPhone, teamBPhone, drillPropertyPhone} {
			if texts := h.textsTo(phone); len(texts) != 0 {
				t.Errorf("%s is outside the drill but got %q", phone, texts)
			}
		}
		for _, m := range h.twilio.Messages() {
			if !strings.HasPrefix(m.Body, sms.DrillPrefix) {
				t.Errorf("a drill text to %s lacks the prefix: %q", m.To, m.Body)
			}
		}
		// Drills stay out of live statistics.
		m := h.scrape()
		if n := m.value("shouwang_offers_total", map[string]string{"outcome": "offered"}); n > 0 {
			t.Errorf("drill offers counted in live metrics: %v", n)
		}
		if n := m.value("shouwang_alarms_processed_total", map[string]string{"type": "fire", "outcome": "opened"}); n > 0 {
			t.Errorf("the drill's alarm counted in live metrics: %v", n)
		}
		if n, _ := m.histogram("shouwang_alarm_to_offer_sms_seconds"); n != 0 {
			t.Errorf("the drill's offer latency counted in live metrics: %d samples", n)
		}
		// The readable report and access rules.
		code, page := h.raw("GET", "/console/drills/"+drill, "", "", nil)
		if code != 200 || !bytes.Contains(page, []byte("/report")) {
			t.Errorf("report page: %d", code)
		}
		h.community("c2")
		if code, _ := h.call("GET", "/v1/drills/"+drill+"/report", h.token("dispatcher", "c2", "d2"), nil); code != 404 {
			t.Errorf("another community's dispatcher read the report: %d", code)
		}
	})
}

// A drill duty skipped when the plan starts (its party is outside the
// scope) counts as done at once: the steps after it are given out in the
// same start, without anyone replying. Here the volunteer teams are out,
// so "count residents" (after "guide evacuation") goes straight to the
// owners' committee.
func TestDrillSkippedStepFreesTheStepsAfterIt(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		drillCommunity(h)
		dispatcher := h.token("dispatcher", "c1", "d1")
		dr := h.must(201, "POST", "/v1/communities/c1/drills/run", dispatcher, map[string]any{"key": "k2", "type": "fire",
			"scope": map[string]any{"organisations": []string{"owners_committee"}}, "time_limit": "30m"})
		texts := h.waitTexts(drillOwnersPhone, 1, sms.DrillPrefix)
		if !strings.Contains(texts[0], "清点") && !strings.Contains(texts[0], "count") {
			t.Errorf("owners' committee got %q, want the count-residents duty", texts[0])
		}
		h.must(200, "POST", "/v1/incidents/"+dr["incident"].(string)+"/resolve", dispatcher, nil)
		duties := report(h, dispatcher, dr["id"].(string))["duties"].(map[string]any)
		outcomes := map[string]string{}
		for _, it := range duties["items"].([]any) {
			d := it.(map[string]any)
			outcomes[d["assignee"].(string)] = d["outcome"].(string)
		}
		if outcomes["volunteer_team"] != "skipped" || outcomes["property_company"] != "skipped" {
			t.Errorf("duty outcomes = %v, want the volunteer team's and the property company's skipped", outcomes)
		}
		for _, phone := range []string{teamAPhone, teamBPhone, drillPropertyPhone} {
			if got := h.textsTo(phone); len(got) != 0 {
				t.Errorf("%s is outside the drill but got %q", phone, got)
			}
		}
	})
}

// A scheduled drill fires at its slot, ends at its time limit and reports.
func TestScheduledDrillFiresAndEndsAtItsLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		saturday := nextMondayAt(time.Now(), 9, 59).AddDate(0, 0, 5)
		clock := schedule.NewFakeClock(saturday)
		h := start(t, store, func(c *Config) { c.Clock = clock; c.ScheduleGrace = time.Hour })
		drillCommunity(h)
		dispatcher := h.token("dispatcher", "c1", "d1")
		code, body := h.call("POST", "/v1/communities/c1/drills", dispatcher, map[string]any{"spec": "every saturday",
			"type": "fire", "scope": map[string]any{"teams": []string{"team-a"}}})
		if code != 422 || !strings.Contains(fmt.Sprint(body), "spec") {
			t.Fatalf("a bad cron spec: %d %v, want 422 naming spec", code, body)
		}
		sched := h.must(201, "POST", "/v1/communities/c1/drills", dispatcher, map[string]any{"spec": "0 10 * * 6",
			"type": "fire", "scope": map[string]any{"teams": []string{"team-a"}}, "time_limit": "20m"})

		eventually(t, 10*time.Second, func() bool { return clock.Waiters() > 0 }, says("scheduler never slept"))
		clock.Set(saturday.Add(2 * time.Minute)) // Saturday 10:01 Shanghai
		var drills []any
		eventually(t, 10*time.Second, func() bool {
			drills = h.must(200, "GET", "/v1/communities/c1/drills", dispatcher, nil)["drills"].([]any)
			return len(drills) == 1
		}, says("no drill started at the slot"))
		dr := drills[0].(map[string]any)
		if dr["schedule"] != sched["id"] {
			t.Errorf("drill %v was not started by schedule %v", dr, sched["id"])
		}
		h.waitTexts(inScope1Phone, 1, sms.DrillPrefix)
		if texts := h.textsTo(proPhone); len(texts) != 0 {
			t.Errorf("the professional outside the drill got %q", texts)
		}
		// Its 20 minutes are up (the timer is delivered now rather than
		// waiting): the drill ends by itself and reports.
		ev, err := events.New("drill-end-test", "timer.drill", events.TimerSubjectDrill, "c1", time.Now(),
			map[string]string{"drill": dr["id"].(string)})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.svc.Drills.HandleTimer(context.Background(), ev); err != nil {
			t.Fatalf("drill timer: %v", err)
		}
		rep := report(h, dispatcher, dr["id"].(string))
		if rep["status"] != "resolved" || num(rep["waves"].([]any)[0].(map[string]any)["offered"]) != 2 {
			t.Errorf("report after the time limit: %v", rep)
		}
		inc := h.incident(dispatcher, dr["incident"].(string))
		if !strings.Contains(fmt.Sprint(inc["timeline"]), "drill time limit") {
			t.Errorf("the timeline does not say the time limit ended it: %v", inc["timeline"])
		}
	})
}

// drill run from the command line writes the drill to the database the
// service shares; the service runs it.
func TestDrillCommand(t *testing.T) {
	h := start(t, "postgres", nil)
	drillCommunity(h)
	var out, errOut bytes.Buffer
	err := drillCmd(context.Background(), []string{"run", "--community", "c1", "--type", "fire", "--database-url", h.cfg.DatabaseURL},
		&out, &errOut)
	if err != nil {
		t.Fatalf("drill run: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "teams: team-a, team-b") {
		t.Errorf("output %q does not list the default scope (every volunteer team)", out.String())
	}
	h.waitTexts(inScope1Phone, 1, sms.DrillPrefix)
	h.waitTexts(otherTeamPhone, 1, sms.DrillPrefix)
	time.Sleep(200 * time.Millisecond)
	if texts := h.textsTo(proPhone); len(texts) != 0 {
		t.Errorf("the professional in no team got %q", texts)
	}
	if err := drillCmd(context.Background(), []string{"run", "--community", "c1", "--database-url", h.cfg.DatabaseURL}, &out, &errOut); err == nil {
		t.Error("drill run without --type succeeded")
	}
}
