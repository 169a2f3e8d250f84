package responders_test

import (
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms"
)

// Which certificate reminders are due on a day: 60 and 14 days before the
// longest-lasting certificate of each skill, to the responder and their
// team's duty phone.
func TestCertificateReminderRules(t *testing.T) {
	tax := events.DefaultTaxonomy()
	today := time.Date(2027, 3, 1, 9, 0, 0, 0, responders.Zone)
	in := func(days int) time.Time { return time.Date(2027, 3, 1+days, 18, 0, 0, 0, responders.Zone) }
	c := responders.Community{ID: "xinhua", Name: "新华社区", Locale: "zh-CN"}
	teams := map[string]responders.Organisation{
		"team1": {ID: "team1", Name: "志愿者服务队", DutyPhone: "+8613900000002"},
		"quiet": {ID: "quiet", Name: "无电话队"},
	}
	for _, tc := range []struct {
		name   string
		certs  []responders.Certificate
		team   string
		locale string
		want   []string // template:days for each text, responder first
	}{
		{"61 days left", []responders.Certificate{{Skill: "medic", ExpiresAt: in(61)}}, "team1", "", nil},
		{"60 days left", []responders.Certificate{{Skill: "medic", ExpiresAt: in(60)}}, "team1", "",
			[]string{"cert_expiring:60", "cert_expiring_lead:60"}},
		{"first seen with 30 days left", []responders.Certificate{{Skill: "medic", ExpiresAt: in(30)}}, "team1", "",
			[]string{"cert_expiring:30", "cert_expiring_lead:30"}},
		{"15 days left", []responders.Certificate{{Skill: "medic", ExpiresAt: in(15)}}, "", "", []string{"cert_expiring:15"}},
		{"14 days left", []responders.Certificate{{Skill: "medic", ExpiresAt: in(14)}}, "team1", "",
			[]string{"cert_expiring:14", "cert_expiring_lead:14"}},
		{"expires today", []responders.Certificate{{Skill: "medic", ExpiresAt: in(0)}}, "team1", "", nil},
		{"expired", []responders.Certificate{{Skill: "medic", ExpiresAt: in(-3)}}, "team1", "", nil},
		{"renewed", []responders.Certificate{{Skill: "medic", ExpiresAt: in(10)}, {Skill: "medic", ExpiresAt: in(400)}}, "team1", "", nil},
		{"two skills", []responders.Certificate{{Skill: "medic", ExpiresAt: in(50)}, {Skill: "firefighting", ExpiresAt: in(5)}}, "", "",
			[]string{"cert_expiring:5", "cert_expiring:50"}},
		{"team without a phone", []responders.Certificate{{Skill: "medic", ExpiresAt: in(40)}}, "quiet", "", []string{"cert_expiring:40"}},
		{"in English", []responders.Certificate{{Skill: "bomb_disposal", ExpiresAt: in(7)}}, "", "en", []string{"cert_expiring:7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := responders.Responder{ID: "rs1", Name: "王医生", Phone: "+8613800000001", Team: tc.team, Certificates: tc.certs, Locale: tc.locale}
			texts := responders.CertificateReminders(tax, c, []responders.Responder{p}, teams, today)
			var got []string
			for _, x := range texts {
				got = append(got, x.Template+":"+x.Params["days"])
				if !x.Bulk || x.Purpose != responders.PurposeReminder {
					t.Errorf("text %s is not a bulk reminder", x.Key)
				}
				if body := sms.Render(x.Template, x.Locale, x.Params, false); strings.Contains(body, "{") {
					t.Errorf("text %q lacks a parameter", body)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("texts %v, want %v", got, tc.want)
			}
			if tc.locale == "en" {
				body := sms.Render(texts[0].Template, texts[0].Locale, texts[0].Params, false)
				if !strings.Contains(body, "your Bomb disposal certificate expires on 2027-03-08 (in 7 days)") {
					t.Errorf("English reminder %q", body)
				}
			}
		})
	}

	// A renewed certificate has an expiry date of its own, so its
	// reminders have keys of their own.
	old := responders.CertificateReminders(tax, c, []responders.Responder{{ID: "rs1", Phone: "+8613800000001",
		Certificates: []responders.Certificate{{Skill: "medic", ExpiresAt: in(60)}}}}, teams, today)
	renewed := responders.CertificateReminders(tax, c, []responders.Responder{{ID: "rs1", Phone: "+8613800000001",
		Certificates: []responders.Certificate{{Skill: "medic", ExpiresAt: in(60)}, {Skill: "medic", ExpiresAt: in(60).AddDate(3, 0, 0)}}}},
		teams, today.AddDate(3, 0, 0))
	if len(old) != 1 || len(renewed) != 1 || old[0].Key == renewed[0].Key {
		t.Fatalf("keys before and after renewal: %v / %v", old, renewed)
	}
}
