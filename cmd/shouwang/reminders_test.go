package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/schedule"
)

const (
	leadPhone      = "+8613900007001" // the volunteer team's duty phone: its lead
	committeePhone = "+8613900007002" // the owners' committee
	remindedPhone  = "+8613800007101" // a medic in the team
)

// tomorrowAt is the next day after t at hh:mm in Shanghai.
func tomorrowAt(t time.Time, hh, mm int) time.Time {
	t = t.In(responders.Zone)
	return time.Date(t.Year(), t.Month(), t.Day()+1, hh, mm, 0, 0, responders.Zone)
}

// remindersAt09 starts a service whose daily reminders run at 09:00 on a
// fake clock set to start.
func remindersAt09(t *testing.T, store string, start0 time.Time, tweak func(*Config)) (*harness, *schedule.FakeClock) {
	clock := schedule.NewFakeClock(start0)
	h := start(t, store, func(c *Config) {
		c.Clock, c.RemindersCron, c.ScheduleGrace, c.BudgetMonth = clock, "0 9 * * *", time.Hour, 10
		if tweak != nil {
			tweak(c)
		}
	})
	return h, clock
}

// runDay moves the fake clock to 09:02 on day's date and waits until the
// reminders of that 09:00 slot are done, then a little more for their
// texts to reach the fake Twilio.
func (h *harness) runDay(clock *schedule.FakeClock, day time.Time) {
	h.t.Helper()
	slot := time.Date(day.Year(), day.Month(), day.Day(), 9, 0, 0, 0, responders.Zone)
	clock.Set(slot.Add(2 * time.Minute))
	eventually(h.t, 20*time.Second, func() bool {
		var done int64
		err := h.svc.DB.QueryRow(context.Background(), `SELECT done_at FROM schedule_runs WHERE job = $1 AND slot = $2`,
			responders.RemindersJob, slot.UnixMilli()).Scan(&done)
		return err == nil && done != 0
	}, says("the reminders of %s never ran", slot.Format(time.RFC3339)))
	time.Sleep(time.Second) // reminders go at 2 a second
}

func (h *harness) org(community, id, kind, name, phone string) {
	h.t.Helper()
	o := map[string]any{"id": id, "kind": kind, "name": name}
	if phone != "" {
		o["duty_phone"] = phone
	}
	h.must(201, "POST", "/v1/communities/"+community+"/organisations", testAdminToken, o)
}

func certified(id, name, phone, skill, team string, expires time.Time, where geo.Point) map[string]any {
	certs := []map[string]any{{"skill": skill, "name": "红十字救护员证", "expires_at": expires}}
	return map[string]any{"id": id, "name": name, "phone": phone, "skills": []string{skill}, "team": team,
		"certificates": certs, "location": where, "available": true}
}

func textsWith(h *harness, phone, contains string) int {
	n := 0
	for _, b := range h.textsTo(phone) {
		if strings.Contains(b, contains) {
			n++
		}
	}
	return n
}

// A medic's first-aid certificate runs out in 60 days: at 09:00 the medic
// and the team lead each get one reminder; running the day again, or the
// next day, sends nothing more; 14 days before, each gets a second.
func TestCertificateRemindersAt60And14Days(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		d := tomorrowAt(time.Now(), 8, 59)
		h, clock := remindersAt09(t, store, d, nil)
		h.community("c1")
		h.org("c1", "team1", "volunteer_team", "红十字志愿服务队", leadPhone)
		expires := time.Date(d.Year(), d.Month(), d.Day()+60, 12, 0, 0, 0, responders.Zone)
		h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken,
			certified("medic", "王医生", remindedPhone, "medic", "team1", expires, centre))
		// A certificate with a long time to run brings no text.
		h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken,
			certified("calm", "李医生", "+8613800007102", "medic", "team1", expires.AddDate(1, 0, 0), centre))

		h.runDay(clock, d)
		date := expires.Format(time.DateOnly)
		mine := h.waitTexts(remindedPhone, 1, "还有60天")
		if !strings.Contains(mine[0], "王医生，您的红十字救护员证将于"+date+"到期") || !strings.Contains(mine[0], "不再向您派发急救求助") {
			t.Errorf("the medic's reminder says %q", mine[0])
		}
		lead := h.waitTexts(leadPhone, 1, "还有60天")
		if !strings.Contains(lead[0], "红十字志愿服务队队员王医生的红十字救护员证将于"+date+"到期") {
			t.Errorf("the lead's reminder says %q", lead[0])
		}

		// The same slot handled again (a redelivery after a crash), then the next day.
		log := testLogger(t)
		again := &responders.Reminders{DB: h.svc.DB, Tax: events.DefaultTaxonomy(), Relay: events.NewRelay(h.svc.DB, h.svc.Bus, log),
			Log: log, Now: time.Now, BudgetMonth: 10}
		if err := again.Run(context.Background(), d.Add(time.Minute)); err != nil {
			t.Fatalf("run the slot again: %v", err)
		}
		h.runDay(clock, d.AddDate(0, 0, 1))
		if n, m := len(h.textsTo(remindedPhone)), len(h.textsTo(leadPhone)); n != 1 || m != 1 {
			t.Fatalf("after a rerun and a day: the medic got %d texts, the lead %d; want 1 each", n, m)
		}
		if texts := h.textsTo("+8613800007102"); len(texts) != 0 {
			t.Errorf("a certificate valid for 14 months brought %q", texts)
		}

		// 14 days before expiry (the clock jumps 45 days: every day runs).
		h.runDay(clock, d.AddDate(0, 0, 46))
		h.waitTexts(remindedPhone, 1, "还有14天")
		h.waitTexts(leadPhone, 1, "还有14天")
		if n, m := len(h.textsTo(remindedPhone)), len(h.textsTo(leadPhone)); n != 2 || m != 2 {
			t.Fatalf("the medic got %d texts, the lead %d; want 2 each: %q %q", n, m, h.textsTo(remindedPhone), h.textsTo(leadPhone))
		}

		// Renewed: the new certificate is a year away, so nothing more.
		h.must(200, "PATCH", "/v1/communities/c1/responders/medic", testAdminToken, map[string]any{"certificates": []map[string]any{
			{"skill": "medic", "name": "红十字救护员证", "expires_at": expires}, {"skill": "medic", "name": "红十字救护员证", "expires_at": expires.AddDate(3, 0, 0)}}})
		h.runDay(clock, d.AddDate(0, 0, 50))
		if n := len(h.textsTo(remindedPhone)); n != 2 {
			t.Fatalf("after renewing, the medic got %d texts, want still 2: %q", n, h.textsTo(remindedPhone))
		}
	})
}

// A medic whose certificate runs out stops being offered medical calls;
// another with a valid certificate is offered, and renewing brings the
// first back.
func TestExpiredCertificateLeavesMatching(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		soon := time.Now().Add(1500 * time.Millisecond)
		h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken,
			certified("lapsing", "即将过期", "+8613800007201", "medic", "", soon, geo.Offset(centre, 50, 0)))
		h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken,
			certified("valid", "持证", "+8613800007202", "medic", "", time.Now().AddDate(1, 0, 0), geo.Offset(centre, 300, 0)))
		time.Sleep(time.Until(soon) + 200*time.Millisecond)

		resident := h.token("resident", "c1", "r1")
		h.press(resident, "k1", "medical", centre)
		h.waitTexts("+8613800007202", 1, "回复 1 接受")
		time.Sleep(300 * time.Millisecond)
		if texts := h.textsTo("+8613800007201"); len(texts) != 0 {
			t.Fatalf("the medic whose certificate expired was texted: %q", texts)
		}

		h.must(200, "PATCH", "/v1/communities/c1/responders/lapsing", testAdminToken, map[string]any{
			"certificates": []map[string]any{{"skill": "medic", "name": "红十字救护员证", "expires_at": time.Now().AddDate(2, 0, 0)}}})
		h.press(resident, "k2", "medical", geo.Offset(centre, 0, 400)) // 400 m east: a new incident
		h.waitTexts("+8613800007201", 1, "回复 1 接受")
	})
}

// Training budgets through the API: a 10,000 yuan budget, 8,500 spent
// texts the team lead and the center about 80% once, 10,200 about 100%;
// the owners' committee reads every team's budget, a team its own only.
func TestTrainingBudgetsAPI(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.community("c2")
		h.org("c1", "team1", "volunteer_team", "志愿者服务队", leadPhone)
		h.org("c1", "team2", "volunteer_team", "巡防队", "")
		h.org("c1", "committee", "owners_committee", "业主委员会", committeePhone)
		dispatcher := h.token("dispatcher", "c1", "d1")
		year := time.Now().In(responders.Zone).Year()
		budget := fmt.Sprintf("/v1/communities/c1/teams/team1/budgets/%d", year)
		training := "/v1/communities/c1/teams/team1/training"

		b := h.must(200, "PUT", budget, dispatcher, map[string]any{"amount": 10000, "note": "街道拨款"})
		if b["budget"] != 10000.0 || b["spent"] != 0.0 || b["budgeted"] != true {
			t.Fatalf("budget answer %v", b)
		}
		aid := map[string]any{"id": "first-aid", "course": "红十字救护员培训", "date": fmt.Sprintf("%d-03-10", year), "amount": "8500",
			"attendees": []string{"张三", "李四"}, "attendee_count": 12}
		out := h.must(201, "POST", training, dispatcher, aid)
		if sum := out["budget"].(map[string]any); sum["percent"] != 85.0 || sum["remaining"] != 1500.0 {
			t.Fatalf("after 8,500: %v", out)
		}
		h.waitTexts(leadPhone, 1, "已用85%（8500.00/10000.00元）")
		h.waitTexts(centerPhone, 1, "已用85%")
		h.must(200, "POST", training, dispatcher, aid) // a retry records nothing new
		h.must(201, "POST", training, dispatcher, map[string]any{"course": "AED 使用", "date": fmt.Sprintf("%d-04-01", year),
			"amount": 1700.00, "attendee_count": 8})
		h.waitTexts(leadPhone, 1, "已用完：支出10200.00元，预算10000.00元")
		h.waitTexts(centerPhone, 1, "已用完")

		committee := h.token("org", "c1", "committee")
		got := h.must(200, "GET", budget, committee, nil)
		if got["spent"] != 10200.0 || got["percent"] != 102.0 || got["remaining"] != -200.0 || len(got["entries"].([]any)) != 2 ||
			got["attendees"] != 20.0 {
			t.Fatalf("team budget %v", got)
		}
		list := h.must(200, "GET", fmt.Sprintf("/v1/communities/c1/budgets?year=%d", year), committee, nil)
		teams := map[string]map[string]any{}
		for _, x := range list["teams"].([]any) {
			m := x.(map[string]any)
			teams[m["team"].(string)] = m
		}
		if teams["team1"]["spent"] != 10200.0 || teams["team2"]["budgeted"] != false || teams["team2"]["percent"] != nil || list["spent"] != 10200.0 {
			t.Fatalf("budgets of c1: %v", list)
		}

		// Who may read and write.
		for _, tc := range []struct {
			who, token, method, path string
			want                     int
		}{
			{"the team itself", h.token("org", "c1", "team1"), "GET", budget, 200},
			{"another team", h.token("org", "c1", "team2"), "GET", budget, 403},
			{"another team, the list", h.token("org", "c1", "team2"), "GET", "/v1/communities/c1/budgets", 403},
			{"a resident", h.token("resident", "c1", "r1"), "GET", budget, 403},
			{"another community's dispatcher", h.token("dispatcher", "c2", "d2"), "GET", budget, 404},
			{"the committee, writing", committee, "PUT", budget, 403},
			{"nobody", "", "GET", budget, 401},
		} {
			var body any
			if tc.method == "PUT" {
				body = map[string]any{"amount": 1}
			}
			if code, out := h.call(tc.method, tc.path, tc.token, body); code != tc.want {
				t.Errorf("%s: %s %s got %d %v, want %d", tc.who, tc.method, tc.path, code, out, tc.want)
			}
		}

		// Bad input names the field.
		for _, tc := range []struct {
			method, path string
			body         any
			want         int
			fields       []string
		}{
			{"PUT", budget, map[string]any{"amount": "12.345"}, 422, []string{"amount"}},
			{"PUT", budget, map[string]any{"amount": -1}, 422, []string{"amount"}},
			{"PUT", budget, map[string]any{}, 422, []string{"amount"}},
			{"PUT", "/v1/communities/c1/teams/team1/budgets/1999", map[string]any{"amount": 1}, 422, []string{"year"}},
			{"PUT", budget, map[string]any{"amount": 1, "amout": 2}, 400, []string{"body"}},
			{"POST", training, map[string]any{"course": "", "date": "2026-02-30", "amount": "1e3"}, 422,
				[]string{"course", "date", "amount", "attendee_count"}},
			{"POST", training, map[string]any{"course": "急救", "date": "2026-02-01", "amount": 1, "attendees": []string{" "}}, 422,
				[]string{"attendees[0]"}},
			{"POST", training, map[string]any{"id": "first-aid", "course": "改过", "date": fmt.Sprintf("%d-03-10", year), "amount": 1,
				"attendee_count": 1}, 409, nil},
			{"POST", "/v1/communities/c1/teams/ghost/training", map[string]any{"course": "急救", "date": "2026-02-01", "amount": 1,
				"attendee_count": 1}, 404, nil},
			{"GET", "/v1/communities/c1/budgets?year=abc", nil, 422, []string{"year"}},
		} {
			code, out := h.call(tc.method, tc.path, dispatcher, tc.body)
			if code != tc.want {
				t.Errorf("%s %s %v: %d %v, want %d", tc.method, tc.path, tc.body, code, out, tc.want)
				continue
			}
			_, fields := errorOf(t, tc.method+" "+tc.path, out)
			for _, f := range tc.fields {
				if fields[f] == nil {
					t.Errorf("%s %s %v: %v does not name %s", tc.method, tc.path, tc.body, out, f)
				}
			}
		}
		// Each threshold reached each recipient once.
		time.Sleep(500 * time.Millisecond)
		if n, m := len(h.textsTo(leadPhone)), len(h.textsTo(centerPhone)); n != 2 || m != 2 {
			t.Errorf("the lead got %d texts and the center %d, want 2 each: %q %q", n, m, h.textsTo(leadPhone), h.textsTo(centerPhone))
		}
	})
}

// A team whose last training was over six months ago gets a reminder, at
// most once a month; in September (the month before October's budgeting)
// the emergency center and the owners' committee are reminded once to put
// training money in next year's budget.
func TestTrainingIdleAndBudgetSeasonReminders(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		year := time.Now().In(responders.Zone).Year() + 1
		aug31 := time.Date(year, time.August, 31, 8, 59, 0, 0, responders.Zone)
		h, clock := remindersAt09(t, store, aug31, nil)
		h.community("c1")
		h.org("c1", "team1", "volunteer_team", "志愿者服务队", leadPhone)
		h.org("c1", "team2", "volunteer_team", "新队", "") // no members: not reminded
		h.org("c1", "committee", "owners_committee", "业主委员会", committeePhone)
		h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken,
			certified("m1", "队员", remindedPhone, "medic", "team1", aug31.AddDate(3, 0, 0), centre))
		dispatcher := h.token("dispatcher", "c1", "d1")
		last := time.Now().In(responders.Zone).Format(time.DateOnly)
		h.must(201, "POST", "/v1/communities/c1/teams/team1/training", dispatcher, map[string]any{"course": "消防演练",
			"date": last, "amount": 300, "attendee_count": 6})
		h.must(200, "PUT", fmt.Sprintf("/v1/communities/c1/teams/team1/budgets/%d", year), dispatcher, map[string]any{"amount": "5000"})

		h.runDay(clock, aug31)
		idle := h.waitTexts(leadPhone, 1, "个月没有培训记录")
		if !strings.Contains(idle[0], "志愿者服务队已") || !strings.Contains(idle[0], "上次："+last) {
			t.Errorf("idle reminder %q", idle[0])
		}
		if n := textsWith(h, centerPhone, "编制"); n != 0 {
			t.Fatalf("the budgeting reminder went out in August")
		}

		h.runDay(clock, aug31.AddDate(0, 0, 1))
		for _, phone := range []string{centerPhone, committeePhone} {
			got := h.waitTexts(phone, 1, "编制")
			want := fmt.Sprintf("测试社区10月编制%d年预算，请列入应急队伍培训经费。%d年培训支出：志愿者服务队 0.00/5000.00元；新队 0.00元（未编预算）。", year+1, year)
			if !strings.Contains(got[0], want) {
				t.Errorf("budgeting reminder to %s:\n got  %q\n want %q", phone, got[0], want)
			}
		}
		h.runDay(clock, aug31.AddDate(0, 0, 2))
		if n, m := textsWith(h, centerPhone, "编制"), textsWith(h, committeePhone, "编制"); n != 1 || m != 1 {
			t.Errorf("budgeting reminders: center %d, committee %d; want one each", n, m)
		}
		// Once a month: August's and September's, not one a day.
		var idleKeys int
		if err := h.svc.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM sms_outbox WHERE dedup_key LIKE 'training-idle:%'`).
			Scan(&idleKeys); err != nil || idleKeys != 2 {
			t.Errorf("idle reminders queued: %d (%v), want 2 (August, September)", idleKeys, err)
		}
		if texts := h.textsTo("+8613800007101"); len(texts) != 0 {
			t.Errorf("a member was texted: %q", texts)
		}
	})
}

// Reminders wait behind live texts: with a slow provider and 200
// certificate reminders going out, a medical alarm's offer reaches the
// medic long before most reminders.
func TestRemindersDoNotDelayLiveTexts(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		d := tomorrowAt(time.Now(), 8, 59)
		h, clock := remindersAt09(t, store, d, func(c *Config) { c.SMSRate, c.SMSBulkRate = 40, 20 })
		h.twilio.SetDelay(20 * time.Millisecond)
		h.community("c1")
		expires := d.AddDate(0, 0, 30)
		for i := range 200 {
			h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken, certified(fmt.Sprintf("ff%03d", i), fmt.Sprintf("消防员%03d", i),
				fmt.Sprintf("+861370000%04d", i), "firefighting", "", expires, geo.Offset(centre, 5000, 0)))
		}
		medic := "+8613800007301"
		h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken,
			certified("medic", "急救员", medic, "medic", "", d.AddDate(2, 0, 0), geo.Offset(centre, 100, 0)))

		clock.Set(d.Add(2 * time.Minute))
		reminders := func() int {
			n := 0
			for _, m := range h.twilio.Messages() {
				if strings.Contains(m.Body, "还有30天") {
					n++
				}
			}
			return n
		}
		// All 200 queued, and the first on their way.
		eventually(t, 20*time.Second, func() bool {
			var queued int
			err := h.svc.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM sms_outbox WHERE purpose = $1`, responders.PurposeReminder).Scan(&queued)
			return err == nil && queued == 200 && reminders() >= 5
		}, says("the reminders were not queued and on their way"))
		resident := h.token("resident", "c1", "r1")
		h.press(resident, "k1", "medical", centre)
		h.waitTexts(medic, 1, "回复 1 接受")
		before := 0
		for _, m := range h.twilio.Messages() {
			if m.To == medic {
				break
			}
			if strings.Contains(m.Body, "还有30天") {
				before++
			}
		}
		if before >= 100 {
			t.Fatalf("the offer went out after %d of 200 reminders", before)
		}
		// The reminders go on meanwhile.
		eventually(t, 20*time.Second, func() bool { return reminders() > before+20 }, says("reminders stopped at %d", reminders()))
		t.Logf("offer after %d reminders", before)
	})
}
