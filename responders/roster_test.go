package responders_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
)

var rosterOrgs = []responders.Organisation{
	{ID: "org_team1", Community: "c1", Kind: responders.OrgVolunteerTeam, Name: "平安志愿队"},
	{ID: "org_team2", Community: "c1", Kind: responders.OrgVolunteerTeam, Name: "红马甲"},
	{ID: "org_team3", Community: "c1", Kind: responders.OrgVolunteerTeam, Name: "红马甲"},
}

var rosterHeader = []string{"姓名", "手机号", "技能", "证书", "证书有效期", "党员", "队伍", "经纬度"}

// parseOne parses a roster of one person under header.
func parseOne(t *testing.T, header, row []string) responders.Roster {
	t.Helper()
	return responders.ParseRoster(events.DefaultTaxonomy(), [][]string{header, row}, rosterOrgs, clock)
}

// one returns the responder of a one-row roster, failing on any error.
func one(t *testing.T, header, row []string) responders.Responder {
	t.Helper()
	ro := parseOne(t, header, row)
	if len(ro.Errors) > 0 || len(ro.Entries) != 1 {
		t.Fatalf("row %q: errors %+v", row, ro.Errors)
	}
	return ro.Entries[0].Responder
}

// problem returns the single error of a one-row roster.
func problem(t *testing.T, header, row []string) responders.RosterProblem {
	t.Helper()
	ro := parseOne(t, header, row)
	if len(ro.Errors) != 1 || len(ro.Entries) != 0 || ro.Failed != 1 {
		t.Fatalf("row %q: want exactly one error, got %+v (entries %d)", row, ro.Errors, len(ro.Entries))
	}
	return ro.Errors[0]
}

func person(phone string) []string {
	return []string{"张三", phone, "", "", "", "", "", "31.2304,121.4737"}
}

func TestRosterPhoneNumbers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"13800000000", "+8613800000000"},
		{"138 0000 0000", "+8613800000000"},
		{"138-0000-0000", "+8613800000000"},
		{"+86 138-0000-0000", "+8613800000000"},
		{"8613800000000", "+8613800000000"},
		{"008613800000000", "+8613800000000"},
		{"１３８００００００００", "+8613800000000"},   // full-width, as some IMEs type
		{"13800000000.0", "+8613800000000"}, // a number cell exported to CSV
		{"+85291234567", "+85291234567"},    // Hong Kong
	} {
		if got := one(t, rosterHeader, person(tc.in)).Phone; got != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"12345", "021-64381234", "+86 021 6438 1234", "1380000000", "23800000000", "电话"} {
		p := problem(t, rosterHeader, person(bad))
		if p.Row != 2 || p.Column != "手机号" || p.Value != bad || !strings.Contains(p.Message, "手机号无效") || p.MessageEN == "" {
			t.Errorf("%q: problem %+v, want row 2 手机号 手机号无效", bad, p)
		}
	}
	if p := problem(t, rosterHeader, person("")); p.Column != "手机号" || p.Message != "手机号不能为空" {
		t.Errorf("empty phone: %+v", p)
	}
}

func TestRosterCertificateDates(t *testing.T) {
	// Valid through 30 June 2027, China time.
	want := time.Date(2027, 7, 1, 0, 0, 0, 0, responders.Zone)
	for _, in := range []string{"2027-06-30", "2027/6/30", "2027.6.30", "2027年6月30日", "2027 年 6 月 30 日", "20270630",
		"46568" /* an Excel date cell, raw */, "46568.5", "2027-06-30 00:00:00", "2027-06-30T00:00:00Z"} {
		r := one(t, rosterHeader, []string{"张三", "13800000000", "急救", "急救证", in, "", "", "31.2304,121.4737"})
		if len(r.Certificates) != 1 || !r.Certificates[0].ExpiresAt.Equal(want) {
			t.Errorf("%q → %+v, want expiry %v", in, r.Certificates, want)
		}
	}
	for _, bad := range []string{"2027-02-30", "明年六月", "45", "6/30/27", "2027-13-01"} {
		p := problem(t, rosterHeader, []string{"张三", "13800000000", "急救", "急救证", bad, "", "", "31.2304,121.4737"})
		if p.Column != "证书有效期" || p.Value != bad || !strings.Contains(p.Message, "无法识别的日期") {
			t.Errorf("%q: %+v, want an error on 证书有效期", bad, p)
		}
	}
}

func TestRosterSkillsAndCertificates(t *testing.T) {
	exp := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d+1, 0, 0, 0, 0, responders.Zone) }
	for _, tc := range []struct {
		name                   string
		skills, certs, expires string
		wantSkills             []string
		wantCerts              []responders.Certificate
	}{
		{"zh names, one certificate per skill by name", "急救、消防", "急救证 A123；消防员证(F-9)", "2027-06-30；2028/1/1",
			[]string{"medic", "firefighting"},
			[]responders.Certificate{{Skill: "medic", Name: "急救证", Number: "A123", ExpiresAt: exp(2027, 6, 30)},
				{Skill: "firefighting", Name: "消防员证", Number: "F-9", ExpiresAt: exp(2028, 1, 1)}}},
		{"ids and English names, separators mixed", "medic, First aid/security", "", "",
			[]string{"medic", "security"}, []responders.Certificate{}},
		{"a certificate naming no skill proves the row's certified skill", "急救员；治安巡防", "红十字救护员证：HZ2024001", "2027-06-30",
			[]string{"medic", "security"},
			[]responders.Certificate{{Skill: "medic", Name: "红十字救护员证", Number: "HZ2024001", ExpiresAt: exp(2027, 6, 30)}}},
		{"one date for every certificate", "燃气 电梯", "燃气作业证，电梯安全管理证", "2027-06-30",
			[]string{"gas_safety", "elevator_rescue"},
			[]responders.Certificate{{Skill: "gas_safety", Name: "燃气作业证", ExpiresAt: exp(2027, 6, 30)},
				{Skill: "elevator_rescue", Name: "电梯安全管理证", ExpiresAt: exp(2027, 6, 30)}}},
		{"a date alone certifies every certified skill", "急救，消防", "", "2027-06-30",
			[]string{"medic", "firefighting"},
			[]responders.Certificate{{Skill: "medic", ExpiresAt: exp(2027, 6, 30)}, {Skill: "firefighting", ExpiresAt: exp(2027, 6, 30)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := one(t, rosterHeader, []string{"张三", "13800000000", tc.skills, tc.certs, tc.expires, "", "", "31.2304,121.4737"})
			if !reflect.DeepEqual(r.Skills, tc.wantSkills) {
				t.Errorf("skills %q, want %q", r.Skills, tc.wantSkills)
			}
			if len(r.Certificates) != len(tc.wantCerts) {
				t.Fatalf("certificates %+v, want %+v", r.Certificates, tc.wantCerts)
			}
			for i, c := range r.Certificates {
				w := tc.wantCerts[i]
				if c.Skill != w.Skill || c.Name != w.Name || c.Number != w.Number || !c.ExpiresAt.Equal(w.ExpiresAt) {
					t.Errorf("certificate %d: %+v, want %+v", i, c, w)
				}
			}
		})
	}

	for _, tc := range []struct {
		name, skills, certs, expires string
		column, says                 string
	}{
		{"unknown skill", "急救、开挖掘机", "", "", "技能", "未知技能「开挖掘机」"},
		{"certificate for a skill the row lacks", "急救", "消防员证", "2027-06-30", "证书", "属于技能「消防」"},
		{"certificate no skill can take", "治安巡防", "上岗证", "2027-06-30", "证书", "无法判断证书「上岗证」属于哪项技能"},
		{"certificate without a date", "急救", "急救证", "", "证书有效期", "缺少有效期"},
		{"dates do not pair with certificates", "急救、消防", "急救证、消防证、电工证", "2027-06-30、2027-07-01", "证书有效期", "有 3 个证书，却有 2 个有效期"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problem(t, rosterHeader, []string{"张三", "13800000000", tc.skills, tc.certs, tc.expires, "", "", "31.2304,121.4737"})
			if p.Column != tc.column || !strings.Contains(p.Message, tc.says) {
				t.Errorf("problem %+v, want %s: %s", p, tc.column, tc.says)
			}
		})
	}

	// Imported, with a warning: an expired certificate, a certified skill
	// without a certificate.
	ro := parseOne(t, rosterHeader, []string{"张三", "13800000000", "急救、消防", "急救证", "2025-01-31", "", "", "31.2304,121.4737"})
	if len(ro.Errors) != 0 || len(ro.Entries) != 1 {
		t.Fatalf("errors %+v", ro.Errors)
	}
	var warned []string
	for _, w := range ro.Warnings {
		warned = append(warned, w.Column+": "+w.Message)
	}
	want := []string{"证书有效期: 证书「急救证」已过期（有效期至 2025-01-31），不会据此派单", "技能: 技能「消防」需要有效证书；没有证书不会被派往此类事件"}
	if !reflect.DeepEqual(warned, want) {
		t.Errorf("warnings %q, want %q", warned, want)
	}
}

func TestRosterOtherColumns(t *testing.T) {
	header := []string{"姓名", "手机", "政治面貌", "所属队伍", "纬度", "经度", "值班时间", "类型", "语言"}
	r := one(t, header, []string{"李四", "13900000001", "中共党员", "平安志愿队", "31.2304", "121.4737", "工作日 18:00-08:00；周末 全天", "专业", "英文"})
	want := responders.Responder{Name: "李四", Phone: "+8613900000001", PartyMember: true, Team: "org_team1",
		Location: geo.Point{Lat: 31.2304, Lng: 121.4737}, Available: true, Kind: responders.KindProfessional, Locale: "en",
		Availability: responders.Availability{{Days: []int{1, 2, 3, 4, 5}, Start: "18:00", End: "08:00"}, {Days: []int{6, 7}, Start: "00:00", End: "24:00"}}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
	for _, tc := range []struct{ party string }{{"是"}, {"Y"}, {"1"}, {"true"}, {"√"}, {"预备党员"}} {
		if r := one(t, header, []string{"李四", "13900000001", tc.party, "", "31.2", "121.4", "", "", ""}); !r.PartyMember {
			t.Errorf("党员 %q read as no", tc.party)
		}
	}
	for _, tc := range []struct{ party string }{{"否"}, {"N"}, {"0"}, {"false"}, {"×"}, {"群众"}, {""}} {
		if r := one(t, header, []string{"李四", "13900000001", tc.party, "", "31.2", "121.4", "", "", ""}); r.PartyMember {
			t.Errorf("党员 %q read as yes", tc.party)
		}
	}
	// A team by id; an unknown and an ambiguous team name.
	if r := one(t, header, []string{"李四", "13900000001", "", "org_team3", "31.2", "121.4", "", "", ""}); r.Team != "org_team3" {
		t.Errorf("team by id: %q", r.Team)
	}
	for _, tc := range []struct{ team, says string }{{"蓝天救援队", "社区里没有叫「蓝天救援队」的队伍或组织"}, {"红马甲", "有 2 个叫「红马甲」的组织"}} {
		if p := problem(t, header, []string{"李四", "13900000001", "", tc.team, "31.2", "121.4", "", "", ""}); p.Column != "所属队伍" || !strings.Contains(p.Message, tc.says) {
			t.Errorf("team %q: %+v", tc.team, p)
		}
	}
	for _, tc := range []struct {
		cells  []string
		column string
	}{
		{[]string{"李四", "13900000001", "maybe", "", "31.2", "121.4", "", "", ""}, "政治面貌"},
		{[]string{"李四", "13900000001", "", "", "31.2", "121.4", "晚上有空", "", ""}, "值班时间"},
		{[]string{"李四", "13900000001", "", "", "31.2", "121.4", "", "医生", ""}, "类型"},
		{[]string{"李四", "13900000001", "", "", "31.2", "121.4", "", "", "日语"}, "语言"},
		{[]string{"李四", "13900000001", "", "", "131.2", "121.4", "", "", ""}, "纬度"},
		{[]string{"李四", "13900000001", "", "", "31.2", "", "", "", ""}, "经度"},
		{[]string{"", "13900000001", "", "", "31.2", "121.4", "", "", ""}, "姓名"},
	} {
		if p := problem(t, header, tc.cells); p.Column != tc.column || p.Row != 2 {
			t.Errorf("%q: %+v, want an error on %s", tc.cells, p, tc.column)
		}
	}
}

func TestRosterLocations(t *testing.T) {
	shanghai := geo.Point{Lat: 31.2304, Lng: 121.4737}
	for _, tc := range []struct {
		header []string
		cell   string
	}{
		{[]string{"姓名", "手机号", "经纬度"}, "31.2304,121.4737"},
		{[]string{"姓名", "手机号", "经纬度"}, "31.2304，121.4737"},
		{[]string{"姓名", "手机号", "经纬度"}, "121.4737,31.2304"}, // lng,lat as map apps copy it
		{[]string{"姓名", "手机号", "坐标"}, " 31.2304 121.4737 "},
		{[]string{"姓名", "手机号", "地址"}, "31.2304,121.4737"}, // an address cell holding coordinates
	} {
		if got := one(t, tc.header, []string{"张三", "13800000000", tc.cell}).Location; got != shanghai {
			t.Errorf("%s %q → %v", tc.header[2], tc.cell, got)
		}
	}
	p := problem(t, []string{"姓名", "手机号", "地址"}, []string{"张三", "13800000000", "人民广场3栋2单元"})
	if p.Column != "地址" || !strings.HasPrefix(p.Message, "需要经纬度") {
		t.Errorf("text address: %+v, want 需要经纬度 on 地址", p)
	}
	p = problem(t, []string{"姓名", "手机号", "地址", "经纬度"}, []string{"张三", "13800000000", "人民广场3栋", ""})
	if p.Column != "地址" || !strings.HasPrefix(p.Message, "需要经纬度") {
		t.Errorf("text address, empty coordinates: %+v", p)
	}
	p = problem(t, []string{"姓名", "手机号", "经纬度"}, []string{"张三", "13800000000", "0,0"})
	if p.Column != "经纬度" {
		t.Errorf("0,0: %+v", p)
	}
}

func TestRosterHeader(t *testing.T) {
	tax := events.DefaultTaxonomy()
	// A title row, header notes and an unknown column.
	rows := [][]string{
		{"新华社区应急志愿者名单（2026年11月）"},
		{"*姓名", "手机号（必填）", "Skills", "备注", "经纬度"},
		{"张三", "13800000000", "medic", "夜班", "31.2304,121.4737"},
		{},
		{"李四", "13800000001", "", "", "31.2304,121.4737"},
		{"王五", "138 0000 0000", "", "", "31.2304,121.4737"},
	}
	ro := responders.ParseRoster(tax, rows, nil, clock)
	if ro.Rows != 3 || len(ro.Entries) != 2 || ro.Entries[0].Row != 3 || ro.Entries[1].Row != 5 {
		t.Errorf("rows %d, entries %+v", ro.Rows, ro.Entries)
	}
	wantErr := []responders.RosterProblem{{Row: 6, Column: "手机号（必填）", Value: "138 0000 0000",
		Message: "与第 3 行手机号重复", MessageEN: "the same phone number as row 3"}}
	if !reflect.DeepEqual(ro.Errors, wantErr) {
		t.Errorf("errors %+v, want %+v", ro.Errors, wantErr)
	}
	if len(ro.Warnings) != 1 || ro.Warnings[0].Row != 2 || ro.Warnings[0].Column != "备注" || ro.Warnings[0].Message != "未知列，已忽略" {
		t.Errorf("warnings %+v, want the unknown column 备注", ro.Warnings)
	}

	for _, tc := range []struct {
		header []string
		column string
		says   string
	}{
		{[]string{"名称", "号码"}, "姓名", "找不到表头"},
		{[]string{"姓名", "手机号"}, "经纬度", "缺少「经纬度」列"},
		{[]string{"姓名", "手机号", "纬度"}, "纬度/经度", "两列需要同时提供"},
		{[]string{"姓名", "手机", "电话", "经纬度"}, "电话", "与「手机」列重复"},
	} {
		ro := responders.ParseRoster(tax, [][]string{tc.header, {"张三", "13800000000", "x", "31.2,121.4"}}, nil, clock)
		if len(ro.Errors) != 1 || ro.Errors[0].Column != tc.column || !strings.Contains(ro.Errors[0].Message, tc.says) || len(ro.Entries) != 0 {
			t.Errorf("header %q: errors %+v, want %s: %s and no entries", tc.header, ro.Errors, tc.column, tc.says)
		}
	}
}
