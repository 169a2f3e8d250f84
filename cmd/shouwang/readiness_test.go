package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/schedule"
)

// nextMondayAt is the next Monday at hh:mm in Shanghai after t.
func nextMondayAt(t time.Time, hh, mm int) time.Time {
	t = t.In(responders.Zone)
	d := time.Date(t.Year(), t.Month(), t.Day(), hh, mm, 0, 0, responders.Zone)
	for d.Weekday() != time.Monday || !d.After(t) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

func gapTexts(rep map[string]any) []string {
	var out []string
	for _, g := range rep["gaps"].([]any) {
		out = append(out, g.(map[string]any)["text"].(map[string]any)["zh-CN"].(string))
	}
	return out
}

func hasGap(rep map[string]any, text string) bool {
	for _, g := range gapTexts(rep) {
		if g == text {
			return true
		}
	}
	return false
}

func medicWith(id, phone string, north float64, availability any) map[string]any {
	return map[string]any{"id": id, "name": "急救员" + id, "phone": phone, "skills": []string{"medic"},
		"certificates": []map[string]any{{"skill": "medic", "name": "救护员证", "expires_at": time.Now().AddDate(1, 0, 0)}},
		"location":     geo.Offset(centre, north, 0), "available": true, "availability": availability}
}

// A dispatcher sees that nobody certified for first aid is near grid 3 at
// night, the emergency center gets the weekly summary on Monday 09:00, and
// a night-shift medic registered nearby closes the gap.
func TestReadinessGapSummaryAndFix(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		monday := nextMondayAt(time.Now(), 8, 59)
		clock := schedule.NewFakeClock(monday)
		h := start(t, store, func(c *Config) { c.Clock = clock; c.ReadinessCron = "0 9 * * 1"; c.ScheduleGrace = time.Hour })
		h.community("c1")
		h.community("c2")
		dispatcher := h.token("dispatcher", "c1", "d1")
		h.must(201, "POST", "/v1/communities/c1/grids", dispatcher, map[string]any{"id": "g3", "name": "3 网格", "location": centre})
		days := []map[string]any{{"days": []int{1, 2, 3, 4, 5, 6, 7}, "start": "08:00", "end": "18:00"}}
		h.must(201, "POST", "/v1/communities/c1/responders", dispatcher, medicWith("day", "+8613800000101", 200, days))

		rep := h.must(200, "GET", "/v1/communities/c1/readiness", dispatcher, nil)
		nightGap := "工作日夜间 3 网格 1 公里内没有持证急救人员"
		if !hasGap(rep, nightGap) {
			t.Fatalf("gaps %q do not include %q", gapTexts(rep), nightGap)
		}
		if hasGap(rep, "工作日白天 3 网格 1 公里内没有持证急救人员") {
			t.Fatalf("the day medic covers daytime, but gaps are %q", gapTexts(rep))
		}
		// Another community's dispatcher does not see it; bad input is named.
		if code, _ := h.call("GET", "/v1/communities/c1/readiness", h.token("dispatcher", "c2", "d2"), nil); code != 404 {
			t.Errorf("another community's dispatcher got %d, want 404", code)
		}
		if code, body := h.call("GET", "/v1/communities/c1/readiness?need=0", dispatcher, nil); code != 422 || !strings.Contains(fmt.Sprint(body), "need") {
			t.Errorf("need=0 got %d %v, want 422 naming need", code, body)
		}
		code, body := h.call("POST", "/v1/communities/c1/responders", dispatcher,
			medicWith("bad", "+8613800000109", 0, []map[string]any{{"days": []int{0}, "start": "25:00", "end": "08:00"}}))
		if code != 422 || !strings.Contains(fmt.Sprint(body), "availability[0].days") || !strings.Contains(fmt.Sprint(body), "availability[0].start") {
			t.Errorf("bad availability got %d %v, want 422 naming the window fields", code, body)
		}

		// Monday 09:00 Shanghai: the weekly summary goes to each emergency center, once.
		clock.Set(monday.Add(2 * time.Minute))
		texts := h.waitTexts(centerPhone, 2, "本周应急覆盖")
		for _, text := range texts {
			if !strings.Contains(text, testPublicURL+"/console/readiness?community=") {
				t.Errorf("summary %q has no link to the console page", text)
			}
		}
		if !strings.Contains(strings.Join(texts, "\n"), "处缺口") {
			t.Errorf("summaries %q do not count the gaps", texts)
		}
		clock.Set(monday.Add(10 * time.Minute))
		time.Sleep(300 * time.Millisecond)
		if n := len(h.textsTo(centerPhone)); n != 2 {
			t.Errorf("the center got %d texts, want one summary per community", n)
		}

		nights := []map[string]any{{"days": []int{1, 2, 3, 4, 5, 6, 7}, "start": "18:00", "end": "08:00"}}
		h.must(201, "POST", "/v1/communities/c1/responders", dispatcher, medicWith("night", "+8613800000102", 100, nights))
		rep = h.must(200, "GET", "/v1/communities/c1/readiness", dispatcher, nil)
		for _, g := range gapTexts(rep) {
			if strings.Contains(g, "3 网格") && strings.Contains(g, "急救") {
				t.Errorf("grid 3 has medics day and night, but a gap remains: %q", g)
			}
		}
		// The page that lists gaps is served without external resources.
		code, page := h.raw("GET", "/console/readiness", "", "", nil)
		if code != 200 || !strings.Contains(string(page), "/readiness?need=") || strings.Contains(string(page), "https://") {
			t.Errorf("console page: %d, %d bytes", code, len(page))
		}
	})
}

// Matching honours availability windows: a medic whose window is not now
// is not offered; one whose window covers now is.
func TestMatchingHonoursAvailabilityWindows(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		now := time.Now().In(responders.Zone)
		hhmm := func(t time.Time) string { return t.Format("15:04") }
		every := []int{1, 2, 3, 4, 5, 6, 7}
		// Windows two hours wide, centred on now or twelve hours away.
		on := []map[string]any{{"days": every, "start": hhmm(now.Add(-time.Hour)), "end": hhmm(now.Add(time.Hour))}}
		off := []map[string]any{{"days": every, "start": hhmm(now.Add(11 * time.Hour)), "end": hhmm(now.Add(13 * time.Hour))}}
		h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken, medicWith("off-duty", "+8613800000201", 50, off))
		h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken, medicWith("on-duty", "+8613800000202", 300, on))
		resident := h.token("resident", "c1", "r1")
		h.press(resident, "k1", "medical", centre)
		h.waitTexts("+8613800000202", 1, "【守望】")
		time.Sleep(200 * time.Millisecond)
		if texts := h.textsTo("+8613800000201"); len(texts) != 0 {
			t.Errorf("the medic outside their window was texted: %q", texts)
		}
	})
}
