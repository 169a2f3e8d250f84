package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
)

// A community's own gas-leak plan, with deadlines short enough for a test
// (due_minutes may be fractional: 0.01 min is 0.6 s).
const gasPlanC1 = `id: gas-leak-c1
title:
  zh: 阳光花园燃气泄漏预案
  en: Sunshine Garden gas leak plan
applies_to:
  types: [gas_leak]
community: c1
steps:
  - id: shut_valve
    title: {zh: 关闭燃气总阀}
    assignee: property_company
    due_minutes: 1
    instructions: {zh: 关闭本楼燃气总阀，打开楼道窗户通风。}
  - id: inform_building
    title: {zh: 通知本楼住户}
    assignee: owners_committee
    due_minutes: 0.01
  - id: keep_out
    title: {zh: 劝离围观人员}
    assignee: volunteer_team
    due_minutes: 1
  - id: call_119
    title: {zh: 未控制则报119}
    assignee: emergency_center
    due_minutes: 10
    depends_on: [shut_valve]
`

const (
	propertyPhone = "+8613900001001"
	ownersPhone   = "+8613900001002"
	teamPhone     = "+8613900001003"
)

func (h *harness) orgs(community string) {
	h.t.Helper()
	for _, o := range []struct{ id, kind, name, phone string }{
		{community + "-property", "property_company", "阳光物业", propertyPhone},
		{community + "-owners", "owners_committee", "业主委员会", ownersPhone},
		{community + "-team", "volunteer_team", "党员志愿服务队", teamPhone},
	} {
		h.must(201, "POST", "/v1/communities/"+community+"/organisations", testAdminToken,
			map[string]any{"id": o.id, "kind": o.kind, "name": o.name, "duty_phone": o.phone})
	}
}

func (h *harness) postPlan(token, yaml string) (int, map[string]any) {
	h.t.Helper()
	status, raw := h.raw("POST", "/v1/plans", token, "application/yaml", yaml)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return status, out
}

func dutiesByStep(inc map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	run, _ := inc["plan_run"].(map[string]any)
	if run == nil {
		return out
	}
	for _, d := range run["duties"].([]any) {
		m := d.(map[string]any)
		out[m["step"].(string)] = m
	}
	return out
}

// Gas leak opens → property company and owners' committee get their duties
// by SMS → the property company confirms by reply, the owners' committee
// misses its deadline → the center is texted and the duty shows overdue.
func TestScenarioGasLeakPlan(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.orgs("c1")
		dispatcher := h.token("dispatcher", "c1", "")
		if st, out := h.postPlan(dispatcher, gasPlanC1); st != 201 || out["version"] != float64(1) {
			t.Fatalf("post plan: %d %v", st, out)
		}
		resident := h.token("resident", "c1", "r1")
		incident := h.incidentOf(resident, h.press(resident, "k", "gas_leak", centre))

		valve := h.waitTexts(propertyPhone, 1, "关闭燃气总阀")[0]
		if !strings.Contains(valve, "回复 1 确认") || !strings.Contains(valve, "打开楼道窗户") {
			t.Fatalf("property duty text %q", valve)
		}
		h.waitTexts(ownersPhone, 1, "通知本楼住户")
		h.waitTexts(teamPhone, 1, "劝离围观人员")

		// A new version never changes the run under way.
		changed := strings.Replace(gasPlanC1, "关闭燃气总阀}", "关闭燃气总阀（新版）}", 1)
		if st, out := h.postPlan(dispatcher, changed); st != 201 || out["version"] != float64(2) {
			t.Fatalf("post version 2: %d %v", st, out)
		}

		if st := h.reply(propertyPhone, "1"); st != 200 {
			t.Fatalf("reply: %d", st)
		}
		h.waitTexts(propertyPhone, 1, "已确认：关闭燃气总阀")
		h.waitTexts(centerPhone, 1, "逾期")
		var duties map[string]map[string]any
		eventually(t, 10*time.Second, func() bool {
			duties = dutiesByStep(h.incident(dispatcher, incident))
			return duties["shut_valve"]["status"] == "acknowledged" && duties["inform_building"]["status"] == "overdue"
		}, func() string { return fmt.Sprintf("duties %v", duties) })
		if duties["call_119"]["status"] != "pending" {
			t.Fatalf("call_119 must wait for the valve: %v", duties["call_119"])
		}
		inc := h.incident(dispatcher, incident)
		run := inc["plan_run"].(map[string]any)
		if run["version"] != float64(1) || run["plan"] != "gas-leak-c1" {
			t.Fatalf("run %v, want version 1 of the community plan", run)
		}
		if title := duties["shut_valve"]["title"].(map[string]any)["zh-CN"]; title != "关闭燃气总阀" {
			t.Fatalf("the run changed with the new version: %v", title)
		}

		// Done by reply: the step that waited for it is handed out.
		h.reply(propertyPhone, "完成")
		h.waitTexts(centerPhone, 1, "未控制则报119")
		duties = dutiesByStep(h.incident(dispatcher, incident))
		if duties["shut_valve"]["status"] != "done" || duties["call_119"]["status"] != "assigned" {
			t.Fatalf("after done: %v / %v", duties["shut_valve"]["status"], duties["call_119"]["status"])
		}
		kinds := timelineKinds(h.incident(dispatcher, incident))
		for _, k := range []string{"plan_activated", "duty_acknowledged", "duty_overdue", "duty_done"} {
			if count(kinds, k) != 1 {
				t.Errorf("timeline %v: want one %s", kinds, k)
			}
		}
		if count(kinds, "duty_assigned") != 4 {
			t.Errorf("timeline %v: want 4 duty_assigned", kinds)
		}
	})
}

// A flood with three vulnerable residents in range → three volunteer
// duties, one per resident.
func TestScenarioFloodVulnerableResidents(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.orgs("c1")
		dispatcher := h.token("dispatcher", "c1", "")
		for i, north := range []float64{50, 200, 400, 3000} { // the last is outside the flood's 500 m
			h.must(201, "POST", "/v1/communities/c1/vulnerable-residents", dispatcher, map[string]any{
				"id": fmt.Sprintf("v%d", i+1), "name": fmt.Sprintf("独居老人%d", i+1), "address": fmt.Sprintf("%d栋101", i+1),
				"location": geo.Offset(centre, north, 0), "vulnerable": "elderly_alone", "needs": "行动不便", "contact": "女儿 13800000000",
			})
		}
		resident := h.token("resident", "c1", "r1")
		incident := h.incidentOf(resident, h.press(resident, "k", "flood", centre))
		texts := h.waitTexts(teamPhone, 3, "独居老人")
		for i := 1; i <= 3; i++ {
			found := false
			for _, tx := range texts {
				found = found || strings.Contains(tx, fmt.Sprintf("独居老人%d", i))
			}
			if !found {
				t.Errorf("no duty text for resident %d in %q", i, texts)
			}
		}
		run := h.incident(dispatcher, incident)["plan_run"].(map[string]any)
		per := 0
		for _, d := range run["duties"].([]any) {
			if d.(map[string]any)["resident"] != nil {
				per++
			}
		}
		if per != 3 {
			t.Fatalf("%d duties about residents, want 3", per)
		}
		time.Sleep(200 * time.Millisecond)
		for _, tx := range h.textsTo(teamPhone) {
			if strings.Contains(tx, "独居老人4") {
				t.Fatalf("the resident 3 km away got a duty: %q", tx)
			}
		}

		// Vulnerable residents are seen by dispatchers and by whoever was
		// given a duty about them, nobody else.
		h.must(201, "POST", "/v1/communities/c1/residents", dispatcher, map[string]any{"id": "plain", "name": "普通居民"})
		list := h.must(200, "GET", "/v1/communities/c1/vulnerable-residents", dispatcher, nil)["vulnerable_residents"].([]any)
		if len(list) != 4 {
			t.Fatalf("%d vulnerable residents listed, want the 4 registered", len(list))
		}
		team, property := h.token("org", "c1", "c1-team"), h.token("org", "c1", "c1-property")
		h.must(200, "GET", "/v1/communities/c1/vulnerable-residents/v1", team, nil)
		h.must(403, "GET", "/v1/communities/c1/vulnerable-residents/v1", property, nil)
		h.must(403, "GET", "/v1/communities/c1/vulnerable-residents/v4", team, nil) // out of range: no duty about them
		h.must(403, "GET", "/v1/communities/c1/vulnerable-residents", team, nil)
	})
}

// Org users act on their own duties only: another organisation's duties
// and another community's are 403.
func TestDutyAccess(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	h.orgs("c1")
	h.community("c2")
	h.orgs("c2")
	dispatcher := h.token("dispatcher", "c1", "")
	if st, out := h.postPlan(dispatcher, gasPlanC1); st != 201 {
		t.Fatalf("post plan: %d %v", st, out)
	}
	resident := h.token("resident", "c1", "r1")
	incident := h.incidentOf(resident, h.press(resident, "k", "gas_leak", centre))
	h.waitTexts(propertyPhone, 1, "关闭燃气总阀")
	var valve string
	eventually(t, 10*time.Second, func() bool {
		d := dutiesByStep(h.incident(dispatcher, incident))["shut_valve"]
		if d != nil {
			valve = d["id"].(string)
		}
		return valve != ""
	}, says("no valve duty"))

	property := h.token("org", "c1", "c1-property")
	owners := h.token("org", "c1", "c1-owners")
	otherProperty := h.token("org", "c2", "c2-property")
	h.must(403, "POST", "/v1/duties/"+valve+"/ack", owners, nil)
	h.must(403, "POST", "/v1/duties/"+valve+"/done", otherProperty, nil)
	h.must(401, "POST", "/v1/duties/"+valve+"/ack", "", nil)
	out := h.must(200, "POST", "/v1/duties/"+valve+"/ack", property, nil)
	if out["outcome"] != "acknowledged" {
		t.Fatalf("ack: %v", out)
	}
	mine := h.must(200, "GET", "/v1/duties?mine=1", owners, nil)["duties"].([]any)
	for _, d := range mine {
		if d.(map[string]any)["org"] != "c1-owners" {
			t.Fatalf("owners see another organisation's duty: %v", d)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("owners' open duties: %d, want 1", len(mine))
	}
	h.must(200, "POST", "/v1/duties/"+valve+"/done", property, nil)
	h.must(200, "POST", "/v1/duties/"+valve+"/done", property, nil) // twice is harmless
}

// A plan with problems is refused with every problem and its line, by the
// API and by the command line alike.
func TestPlanLint(t *testing.T) {
	bad := "id: bad plan\ntitle: {en: x}\napplies_to: {types: [volcano]}\nsteps:\n  - id: a\n    title: {zh: 步骤}\n    assignee: janitor\n    due_minutes: 5\n"
	h := start(t, "sqlite", nil)
	h.community("c1")
	st, out := h.postPlan(testAdminToken, bad)
	errObj, _ := out["error"].(map[string]any)
	if st != 422 || errObj == nil || len(errObj["problems"].([]any)) < 4 {
		t.Fatalf("post bad plan: %d %v", st, out)
	}
	lines := map[float64]bool{}
	for _, p := range errObj["problems"].([]any) {
		lines[p.(map[string]any)["line"].(float64)] = true
	}
	for _, l := range []float64{1, 2, 3, 7} {
		if !lines[l] {
			t.Errorf("no problem reported at line %v: %v", l, errObj["problems"])
		}
	}
	// Someone else's community: a dispatcher may not.
	other := strings.Replace(gasPlanC1, "community: c1", "community: c2", 1)
	h.community("c2")
	if st, _ := h.postPlan(h.token("dispatcher", "c1", ""), other); st != 403 {
		t.Fatalf("dispatcher posting for another community: %d", st)
	}

	file := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := plansCmd(&buf, []string{"lint", file}); err == nil {
		t.Fatal("lint of a bad plan must fail")
	}
	for _, want := range []string{file + ":1: id:", file + ":3: applies_to.types:", file + ":7: steps[0].assignee:"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("lint output lacks %q:\n%s", want, buf.String())
		}
	}
	good := filepath.Join(t.TempDir(), "good.yaml")
	_ = os.WriteFile(good, []byte(gasPlanC1), 0o600)
	buf.Reset()
	if err := plansCmd(&buf, []string{"lint", good}); err != nil || !strings.Contains(buf.String(), "ok") {
		t.Fatalf("lint of a good plan: %v %s", err, buf.String())
	}
}
