package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/shouwang/shouwang/accounts"
	"github.com/shouwang/shouwang/api"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
)

// demoCentre is a residential area in Shanghai's Jing'an district.
var demoCentre = geo.Point{Lat: 31.2296, Lng: 121.4480}

const demoCommunity = "demo"

var demoSurnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
var demoGiven = []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "桂兰", "建华"}

// demoSkillMix is what each of the 50 demo responders can do, in order.
var demoSkillMix = [][]string{
	{"medic"}, {"medic"}, {"medic", "general"}, {"firefighting"}, {"firefighting", "electrician"},
	{"gas_safety"}, {"flood_rescue", "general"}, {"security"}, {"elevator_rescue"}, {"general"},
}

// seedDemo loads a demo community (once; later starts reuse it) and prints
// tokens for a resident, a dispatcher and an admin, and the demo users who
// sign in with a password.
func seedDemo(ctx context.Context, svc *Service, out io.Writer) error {
	reg := svc.Registry
	now := time.Now()
	_, err := reg.CreateCommunity(ctx, responders.Community{ID: demoCommunity, Name: "阳光花园社区", NameEN: "Sunshine Garden", Location: demoCentre})
	switch {
	case errors.Is(err, errdefs.ErrConflict):
		// seeded by an earlier start
	case err != nil:
		return err
	default:
		if err := seedDemoPeople(ctx, reg, now); err != nil {
			return err
		}
	}
	issue := func(p api.Principal) (string, error) { return svc.Tokens.Issue(ctx, p, "demo") }
	resident, err := issue(api.Principal{Role: api.RoleResident, Community: demoCommunity, Subject: "resident-3-2-501"})
	if err != nil {
		return err
	}
	dispatcher, err := issue(api.Principal{Role: api.RoleDispatcher, Community: demoCommunity, Subject: "dispatcher-1"})
	if err != nil {
		return err
	}
	admin, err := issue(api.Principal{Role: api.RoleAdmin, Subject: "demo-admin"})
	if err != nil {
		return err
	}
	for _, u := range demoUsers {
		u.Community = demoCommunity
		if _, err := svc.Accounts.CreateUser(ctx, u, "demo"); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return fmt.Errorf("demo user %s: %w", u.Username, err)
		}
	}
	base := "http://" + svc.Addr
	fmt.Fprintf(out, `
守望 demo community %q (阳光花园社区) is ready: 50 responders, emergency center, property company, owners' committee, party-member volunteer team, 4 residents (3 vulnerable), and the shipped contingency plans.

  resident token:   %s
  dispatcher token: %s
  admin token:      %s

Try it:
  curl -s -X POST %s/v1/alarms -H "Authorization: Bearer %s" -H 'Content-Type: application/json' \
       -d '{"key":"press-1","type":"medical","location":{"lat":31.2298,"lng":121.4483},"address":"3栋2单元501"}'
  curl -s "%s/v1/incidents?status=active" -H "Authorization: Bearer %s"
  curl -s %s/v1/dev/sms -H "Authorization: Bearer %s"

Coverage-gap page for dispatchers: %s/console/readiness?community=%s

Sign in on the console (%s/console) or the duties page (%s/duties), username / password:
`, demoCommunity, resident, dispatcher, admin, base, resident, base, dispatcher, base, admin, base, demoCommunity, base, base)
	for _, u := range demoUsers {
		fmt.Fprintf(out, "  %-10s / %s   %s\n", u.Username, u.Password, u.Name)
	}
	fmt.Fprintf(out, "\nThe resident 李秀英 signs in on %s/ with a text to 13700000501 (without Twilio it is in /v1/dev/sms).\n\n", base)
	return nil
}

// demoUsers sign in with a password: the demo's dispatcher, and the two
// organisations that get duties in most plans.
var demoUsers = []accounts.NewUser{
	{Username: "dispatcher", Password: "shouwang-demo-1", Role: accounts.RoleDispatcher, Subject: "dispatcher-1", Name: "值班调度员"},
	{Username: "property", Password: "shouwang-demo-2", Role: accounts.RoleOrg, Subject: "demo-property", Name: "阳光物业服务有限公司"},
	{Username: "owners", Password: "shouwang-demo-3", Role: accounts.RoleOrg, Subject: "demo-owners", Name: "阳光花园业主委员会"},
}

func seedDemoPeople(ctx context.Context, reg *responders.Registry, now time.Time) error {
	orgs := []responders.Organisation{
		{ID: "demo-center", Kind: responders.OrgEmergencyCenter, Name: "阳光花园社区应急中心", DutyPhone: "+8613900009000"},
		{ID: "demo-property", Kind: responders.OrgPropertyCompany, Name: "阳光物业服务有限公司", DutyPhone: "+8613900009001"},
		{ID: "demo-owners", Kind: responders.OrgOwnersCommittee, Name: "阳光花园业主委员会", DutyPhone: "+8613900009002"},
		{ID: "demo-party-team", Kind: responders.OrgVolunteerTeam, Name: "阳光花园党员志愿服务队", DutyPhone: "+8613900009003"},
		{ID: "demo-health", Kind: responders.OrgHealthStation, Name: "社区卫生服务站", DutyPhone: "+8613900009004"},
	}
	for _, o := range orgs {
		o.Community = demoCommunity
		if _, err := reg.CreateOrganisation(ctx, o); err != nil {
			return err
		}
	}
	// The resident the printed token is for, and neighbours who need
	// checking on in a flood or a fire.
	for _, r := range []responders.Resident{
		{ID: "resident-3-2-501", Name: "李秀英", Phone: "+8613700000501", Address: "3栋2单元501", Location: ptr(geo.Offset(demoCentre, 20, 30))},
		{ID: "demo-v1", Name: "张桂兰", Phone: "+8613700000601", Address: "5栋1单元102", Location: ptr(geo.Offset(demoCentre, -120, 80)),
			Vulnerable: responders.VulnerableElderlyAlone, Needs: "独居，行动不便，需搀扶", Contact: "女儿 13800000601"},
		{ID: "demo-v2", Name: "王建国", Address: "8栋2单元101", Location: ptr(geo.Offset(demoCentre, 200, -150)),
			Vulnerable: responders.VulnerableDisabled, Needs: "轮椅使用者", Contact: "邻居 13800000602"},
		{ID: "demo-v3", Name: "赵淑珍", Phone: "+8613700000603", Address: "2栋3单元601", Location: ptr(geo.Offset(demoCentre, 300, 250)),
			Vulnerable: responders.VulnerableElderlyAlone, Needs: "高龄独居，听力差", Contact: "社区网格员"},
	} {
		r.Community = demoCommunity
		if _, err := reg.CreateResident(ctx, r); err != nil {
			return fmt.Errorf("demo resident %s: %w", r.ID, err)
		}
	}
	// Four grids (网格) around the centre, for the readiness report.
	for i, g := range []struct{ north, east float64 }{{400, 400}, {400, -400}, {-400, -400}, {-400, 400}} {
		if _, err := reg.SaveGrid(ctx, responders.Grid{ID: fmt.Sprintf("grid-%d", i+1), Community: demoCommunity,
			Name: fmt.Sprintf("%d 网格", i+1), Location: geo.Offset(demoCentre, g.north, g.east)}); err != nil {
			return fmt.Errorf("demo grid %d: %w", i+1, err)
		}
	}
	// Many volunteers work by day: they are on call evenings and weekends.
	offHours, err := responders.ParseAvailability("工作日 18:00-08:00；周末 全天")
	if err != nil {
		return err
	}
	daytime, err := responders.ParseAvailability("每天 08:00-20:00")
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	for i := range 50 {
		skills := demoSkillMix[i%len(demoSkillMix)]
		kind := responders.KindVolunteer
		if i == 7 || i == 27 {
			// Two professionals from the district bomb-disposal unit.
			skills, kind = []string{"bomb_disposal", "security"}, responders.KindProfessional
		}
		var certs []responders.Certificate
		for _, s := range skills {
			if reg.Tax.Skills[s].Certified {
				expires := now.AddDate(1, rng.IntN(12), 0)
				if i == 10 {
					expires = now.AddDate(0, -1, 0) // an expired first-aid certificate: not matched for medic
				}
				certs = append(certs, responders.Certificate{Skill: s, Name: reg.Tax.Skills[s].Label.ZH + "证", ExpiresAt: expires})
			}
		}
		// Spread people from the centre out to about 1.5 km, more of them close by.
		dist := 1500 * math.Sqrt(rng.Float64())
		angle := 2 * math.Pi * rng.Float64()
		r := responders.Responder{
			ID:           fmt.Sprintf("demo-r%02d", i+1),
			Community:    demoCommunity,
			Name:         string(demoSurnames[i%len(demoSurnames)]) + demoGiven[(i*7)%len(demoGiven)],
			Phone:        fmt.Sprintf("+86139000%05d", i+1),
			Skills:       skills,
			Certificates: certs,
			PartyMember:  i%3 == 0,
			Kind:         kind,
			Location:     geo.Offset(demoCentre, dist*math.Cos(angle), dist*math.Sin(angle)),
			Available:    i%9 != 4, // a few are away
		}
		switch i % 4 {
		case 1:
			r.Availability = offHours
		case 2:
			r.Availability = daytime
		}
		if r.PartyMember {
			r.Team = "demo-party-team"
		}
		if _, err := reg.CreateResponder(ctx, r); err != nil {
			return fmt.Errorf("demo responder %d: %w", i+1, err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
