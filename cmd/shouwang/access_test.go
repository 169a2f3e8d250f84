package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms/twiliofake"
)

// matrixRoles are the callers every route is tried as, in the order of
// accessRow.want.
var matrixRoles = []string{"anonymous", "resident", "responder", "org", "other-dispatcher", "dispatcher", "admin"}

// accessRow is one route and the status each role gets.
type accessRow struct {
	method string
	route  string // as registered in fiber: it ties the row to the router
	path   string
	// pathFor, when set, gives each role its own target (a fresh incident
	// to act on, a fresh grid to delete), so one role's change does not
	// decide another's answer.
	pathFor func(role string) string
	body    func(role string) any
	// contentType and raw replace the JSON body (plans are YAML, imports
	// multipart).
	contentType string
	raw         func() []byte
	// anonymous, resident, responder, org, other-dispatcher, dispatcher, admin
	want [7]int
}

// statusOf makes one request and returns its status and, for a JSON
// answer, the decoded body. It does not wait for a stream to end.
func (h *harness) statusOf(method, path, token, contentType string, body []byte) (int, map[string]any) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, nil
	}
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// routeKeys lists "METHOD path" for every route the service's fiber app
// serves (HEAD is fiber's copy of each GET).
func routeKeys(app *fiber.App) map[string]bool {
	out := map[string]bool{}
	for _, r := range app.GetRoutes(true) {
		if r.Method == fiber.MethodHead {
			continue
		}
		out[r.Method+" "+r.Path] = true
	}
	return out
}

// checkAccessMatrix tries every route as every role. It fails if a route
// the service serves has no row, so a new endpoint cannot ship without a
// decision on who may call it.
func checkAccessMatrix(t *testing.T, h *harness, tokens map[string]string, reporter, incident, alarm string) {
	year := time.Now().In(responders.Zone).Year()
	admin := testAdminToken

	// Fixtures the rows act on.
	h.must(201, "POST", "/v1/communities/c1/residents", admin, map[string]any{"id": "res-1", "name": "李奶奶", "phone": "+8613700000801", "location": centre})
	h.must(201, "POST", "/v1/communities/c1/residents", admin, map[string]any{"id": "res-9", "name": "王大爷", "phone": "+8613700000809", "location": centre})
	h.responder("c1", person{"r3", "+8613800000103", []string{"medic"}, 5000, true, true})
	h.must(201, "POST", "/v1/communities/c1/vulnerable-residents", admin, map[string]any{
		"id": "old-1", "name": "赵大爷", "address": "5栋1单元102", "location": geo.Offset(centre, 50, 50), "vulnerable": "elderly_alone"})
	h.must(201, "POST", "/v1/communities/c1/organisations", admin,
		map[string]any{"id": "property", "kind": "property_company", "name": "阳光物业", "duty_phone": "+8613900008001"})
	h.must(201, "POST", "/v1/communities/c1/organisations", admin,
		map[string]any{"id": "team1", "kind": "volunteer_team", "name": "党员志愿服务队", "duty_phone": "+8613900008003"})
	h.must(200, "PUT", fmt.Sprintf("/v1/communities/c1/teams/team1/budgets/%d", year), admin, map[string]any{"amount": "10000.00"})
	drill := h.must(201, "POST", "/v1/communities/c1/drills/run", admin, map[string]any{"key": "matrix", "type": "fire",
		"scope": map[string]any{"organisations": []string{"property"}}, "time_limit": "30m"})["id"].(string)
	h.must(202, "POST", "/v1/login/sms", "", map[string]any{"phone": "13700000801"})
	link := tokenIn(t, h.waitTexts("+8613700000801", 1, "登录")[0])

	// Incidents of their own for the console actions, far apart so they
	// do not join each other.
	fresh := map[string]string{}
	var freshKeys []string
	// The medical plan gives the property company a duty (pressed first:
	// its plan runs while the other incidents open).
	medicalAlarm := h.press(reporter, "matrix-medical", "medical", geo.Offset(centre, -3000, 0))
	for _, action := range []string{"redispatch", "assign", "false-alarm", "mark-drill", "safe"} {
		roles := []string{"dispatcher", "admin"}
		if action == "safe" {
			roles = []string{"resident"}
		}
		for _, role := range roles {
			k := action + "/" + role
			where := geo.Offset(centre, float64(2000*(len(freshKeys)+1)), 0)
			fresh[k] = h.press(reporter, "matrix-"+strings.ReplaceAll(k, "/", "-"), "fire", where)
			freshKeys = append(freshKeys, k)
		}
	}
	for _, k := range freshKeys {
		fresh[k] = h.incidentOf(reporter, fresh[k])
	}
	medical := h.incidentOf(reporter, medicalAlarm)
	property := h.token("org", "c1", "property")
	var duty string
	eventually(t, 10*time.Second, func() bool {
		for _, d := range h.must(200, "GET", "/v1/duties?mine=1", property, nil)["duties"].([]any) {
			if m := d.(map[string]any); m["status"] == "assigned" && m["incident"] == medical {
				duty = m["id"].(string)
				return true
			}
		}
		return false
	}, says("the property company was given no duty for %s", medical))

	n := 0
	next := func() int { n++; return n }
	incidentAction := func(action string) func(role string) string {
		return func(role string) string {
			if id, ok := fresh[action+"/"+role]; ok {
				return "/v1/incidents/" + id + "/" + action
			}
			return "/v1/incidents/" + incident + "/" + action
		}
	}
	perRole := func(format string) func(role string) string {
		return func(role string) string { return fmt.Sprintf(format, role) }
	}
	scope := map[string]any{"teams": []string{"team1"}}
	// Each role that may delete gets its own thing to delete.
	for _, role := range matrixRoles {
		h.must(201, "POST", "/v1/communities/c1/grids", admin, map[string]any{"id": "grid-" + role, "name": "网格 " + role, "location": centre})
		h.must(201, "POST", "/v1/communities/c1/drills", admin, map[string]any{"id": "weekly-" + role, "spec": "0 10 * * 6", "type": "fire", "scope": scope})
		h.must(201, "POST", "/v1/communities/c1/teams/team1/training", admin, map[string]any{
			"id": "aed-" + role, "course": "AED 使用", "date": fmt.Sprintf("%d-01-10", year), "amount": 100, "attendees": []string{"王医生"}})
	}
	roster := func() []byte { return rosterXLSX(t, 2, nil) }
	unsigned := func() []byte {
		return []byte(url.Values{"MessageSid": {newSID()}, "From": {"+8613800000101"}, "Body": {"1"}, "AccountSid": {twiliofake.AccountSID}}.Encode())
	}
	const form = "application/x-www-form-urlencoded"

	pages := []accessRow{}
	for _, p := range []string{"/", "/console", "/duties", "/app.css", "/common.js", "/resident.js", "/console.js",
		"/duties.js", "/sw.js", "/manifest.webmanifest", "/icon.svg"} {
		pages = append(pages, accessRow{method: "GET", route: p, path: p, want: [7]int{200, 200, 200, 200, 200, 200, 200}})
	}
	all200 := [7]int{200, 200, 200, 200, 200, 200, 200}
	rows := append(pages, []accessRow{
		// Probes, scrapes and the API document: nothing to protect.
		{method: "GET", route: "/healthz", path: "/healthz", want: all200},
		{method: "GET", route: "/readyz", path: "/readyz", want: all200},
		{method: "GET", route: "/metrics", path: "/metrics", want: all200},
		{method: "GET", route: "/v1/openapi.yaml", path: "/v1/openapi.yaml", want: all200},
		// The pages fetch their data with the caller's own token.
		{method: "GET", route: "/console/readiness", path: "/console/readiness?community=c1", want: all200},
		{method: "GET", route: "/console/drills/:id", path: "/console/drills/" + drill, want: all200},

		// Twilio proves itself by signature; a bearer token is no substitute.
		{method: "POST", route: "/v1/webhooks/twilio/sms", path: "/v1/webhooks/twilio/sms", contentType: form, raw: unsigned, want: [7]int{403, 403, 403, 403, 403, 403, 403}},
		{method: "POST", route: "/v1/webhooks/twilio/status", path: "/v1/webhooks/twilio/status", contentType: form, raw: unsigned, want: [7]int{403, 403, 403, 403, 403, 403, 403}},
		{method: "POST", route: "/v1/webhooks/twilio/voice", path: "/v1/webhooks/twilio/voice", contentType: form, raw: unsigned, want: [7]int{403, 403, 403, 403, 403, 403, 403}},

		// Signing in: anyone may try; the link in a text is its own key.
		{method: "POST", route: "/v1/login", path: "/v1/login", body: func(role string) any {
			return map[string]any{"username": "nobody-" + role, "password": "not the password"}
		}, want: [7]int{401, 401, 401, 401, 401, 401, 401}},
		{method: "POST", route: "/v1/login/sms", path: "/v1/login/sms", body: func(string) any { return map[string]any{"phone": "13700000999"} },
			want: [7]int{202, 202, 202, 202, 202, 202, 202}},
		{method: "GET", route: "/o/:token", path: "/o/" + link, want: all200},
		{method: "POST", route: "/o/:token", path: "/o/no-such-link-0000", contentType: form, raw: func() []byte { return []byte("action=login") },
			want: [7]int{404, 404, 404, 404, 404, 404, 404}},
		{method: "GET", route: "/v1/session", path: "/v1/session", want: [7]int{401, 200, 200, 200, 200, 200, 200}},
		{method: "GET", route: "/v1/taxonomy", path: "/v1/taxonomy", want: [7]int{401, 200, 200, 200, 200, 200, 200}},

		// Registry.
		{method: "POST", route: "/v1/communities", path: "/v1/communities", body: func(string) any {
			return map[string]any{"id": fmt.Sprintf("cnew%d", next()), "name": "新社区", "location": centre}
		}, want: [7]int{401, 403, 403, 403, 403, 403, 201}},
		{method: "GET", route: "/v1/communities", path: "/v1/communities", want: [7]int{401, 200, 200, 200, 200, 200, 200}},
		{method: "GET", route: "/v1/communities/:id", path: "/v1/communities/c1", want: [7]int{401, 200, 200, 200, 404, 200, 200}},
		{method: "PATCH", route: "/v1/communities/:id", path: "/v1/communities/c1", body: func(string) any { return map[string]any{"name_en": "Test"} },
			want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "POST", route: "/v1/communities/:id/organisations", path: "/v1/communities/c1/organisations", body: func(string) any {
			return map[string]any{"id": fmt.Sprintf("team%d", next()), "kind": "volunteer_team", "name": "志愿队", "duty_phone": "+8613900008002"}
		}, want: [7]int{401, 403, 403, 403, 404, 201, 201}},
		{method: "GET", route: "/v1/communities/:id/organisations", path: "/v1/communities/c1/organisations", want: [7]int{401, 403, 403, 200, 404, 200, 200}},
		{method: "GET", route: "/v1/communities/:id/organisations/:org", path: "/v1/communities/c1/organisations/property", want: [7]int{401, 403, 403, 200, 404, 200, 200}},
		{method: "PATCH", route: "/v1/communities/:id/organisations/:org", path: "/v1/communities/c1/organisations/property",
			body: func(string) any { return map[string]any{"name": "阳光物业公司"} }, want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "POST", route: "/v1/communities/:id/responders", path: "/v1/communities/c1/responders", body: func(string) any {
			k := next()
			return map[string]any{"id": fmt.Sprintf("new-%d", k), "name": "新志愿者", "phone": fmt.Sprintf("+86138000009%02d", k), "location": centre}
		}, want: [7]int{401, 403, 403, 403, 404, 201, 201}},
		{method: "GET", route: "/v1/communities/:id/responders", path: "/v1/communities/c1/responders", want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		// A responder reads their own record only (r1 is theirs).
		{method: "GET", route: "/v1/communities/:id/responders/:rid", path: "/v1/communities/c1/responders/r1", want: [7]int{401, 403, 200, 403, 404, 200, 200}},
		{method: "PATCH", route: "/v1/communities/:id/responders/:rid", path: "/v1/communities/c1/responders/r1",
			body: func(string) any { return map[string]any{"available": true} }, want: [7]int{401, 403, 200, 403, 404, 200, 200}},
		{method: "POST", route: `/v1/communities/:id/responders\:import`, path: "/v1/communities/c1/responders:import?dry_run=1",
			contentType: "multipart", raw: roster, want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "POST", route: "/v1/communities/:id/residents", path: "/v1/communities/c1/residents", body: func(string) any {
			return map[string]any{"id": fmt.Sprintf("res-new-%d", next()), "name": "新住户"}
		}, want: [7]int{401, 403, 403, 403, 404, 201, 201}},
		{method: "GET", route: "/v1/communities/:id/residents", path: "/v1/communities/c1/residents", want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		// The resident token is res-1's: their own record.
		{method: "GET", route: "/v1/communities/:id/residents/:rid", path: "/v1/communities/c1/residents/res-1", want: [7]int{401, 200, 403, 403, 404, 200, 200}},
		{method: "PATCH", route: "/v1/communities/:id/residents/:rid", path: "/v1/communities/c1/residents/res-9",
			body: func(string) any { return map[string]any{"locale": "en"} }, want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "POST", route: "/v1/communities/:id/vulnerable-residents", path: "/v1/communities/c1/vulnerable-residents", body: func(string) any {
			return map[string]any{"id": fmt.Sprintf("old-new-%d", next()), "name": "独居老人", "location": centre, "vulnerable": "elderly_alone"}
		}, want: [7]int{401, 403, 403, 403, 404, 201, 201}},
		{method: "GET", route: "/v1/communities/:id/vulnerable-residents", path: "/v1/communities/c1/vulnerable-residents", want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "GET", route: "/v1/communities/:id/vulnerable-residents/:rid", path: "/v1/communities/c1/vulnerable-residents/old-1", want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "POST", route: "/v1/tokens", path: "/v1/tokens", body: func(string) any { return map[string]string{"role": "resident", "community": "c1", "subject": "minted"} },
			want: [7]int{401, 403, 403, 403, 403, 201, 201}},
		{method: "POST", route: "/v1/users", path: "/v1/users", body: func(string) any {
			return map[string]any{"username": fmt.Sprintf("center%d", next()), "password": "center password", "role": "org", "community": "c1", "subject": "c1-center"}
		}, want: [7]int{401, 403, 403, 403, 403, 201, 201}},

		// Readiness, drills, budgets: the community's staff.
		{method: "POST", route: "/v1/communities/:id/grids", path: "/v1/communities/c1/grids", body: func(string) any {
			return map[string]any{"name": fmt.Sprintf("新网格 %d", next()), "location": centre}
		}, want: [7]int{401, 403, 403, 403, 404, 201, 201}},
		{method: "GET", route: "/v1/communities/:id/grids", path: "/v1/communities/c1/grids", want: [7]int{401, 403, 403, 200, 404, 200, 200}},
		{method: "DELETE", route: "/v1/communities/:id/grids/:grid", pathFor: perRole("/v1/communities/c1/grids/grid-%s"), want: [7]int{401, 403, 403, 403, 404, 204, 204}},
		{method: "GET", route: "/v1/communities/:id/readiness", path: "/v1/communities/c1/readiness", want: [7]int{401, 403, 403, 200, 404, 200, 200}},
		{method: "POST", route: "/v1/communities/:id/drills", path: "/v1/communities/c1/drills", body: func(string) any {
			return map[string]any{"id": fmt.Sprintf("sched-%d", next()), "spec": "0 10 * * 6", "type": "fire", "scope": scope}
		}, want: [7]int{401, 403, 403, 403, 404, 201, 201}},
		{method: "GET", route: "/v1/communities/:id/drills", path: "/v1/communities/c1/drills", want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "POST", route: "/v1/communities/:id/drills/run", path: "/v1/communities/c1/drills/run", body: func(role string) any {
			return map[string]any{"key": "run-" + role, "type": "fire", "time_limit": "30m", "scope": scope}
		}, want: [7]int{401, 403, 403, 403, 404, 201, 201}},
		{method: "DELETE", route: "/v1/communities/:id/drills/:schedule", pathFor: perRole("/v1/communities/c1/drills/weekly-%s"), want: [7]int{401, 403, 403, 403, 404, 204, 204}},
		{method: "GET", route: "/v1/drills/:id", path: "/v1/drills/" + drill, want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		// The drill is still running: no report yet, for those who may read it.
		{method: "GET", route: "/v1/drills/:id/report", path: "/v1/drills/" + drill + "/report", want: [7]int{401, 403, 403, 403, 404, 409, 409}},
		{method: "PUT", route: "/v1/communities/:id/teams/:team/budgets/:year", path: fmt.Sprintf("/v1/communities/c1/teams/team1/budgets/%d", year),
			body: func(string) any { return map[string]any{"amount": "12000.00"} }, want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		// The org user is the emergency center's, which oversees budgets.
		{method: "GET", route: "/v1/communities/:id/teams/:team/budgets/:year", path: fmt.Sprintf("/v1/communities/c1/teams/team1/budgets/%d", year),
			want: [7]int{401, 403, 403, 200, 404, 200, 200}},
		{method: "POST", route: "/v1/communities/:id/teams/:team/training", path: "/v1/communities/c1/teams/team1/training", body: func(string) any {
			return map[string]any{"id": fmt.Sprintf("course-%d", next()), "course": "心肺复苏", "date": fmt.Sprintf("%d-02-10", year), "amount": 50, "attendees": []string{"王医生"}}
		}, want: [7]int{401, 403, 403, 403, 404, 201, 201}},
		{method: "DELETE", route: "/v1/communities/:id/teams/:team/training/:entry", pathFor: perRole("/v1/communities/c1/teams/team1/training/aed-%s"),
			want: [7]int{401, 403, 403, 403, 404, 204, 204}},
		{method: "GET", route: "/v1/communities/:id/budgets", path: "/v1/communities/c1/budgets", want: [7]int{401, 403, 403, 200, 404, 200, 200}},

		// Plans and duties.
		// Another community's dispatcher may write plans, but not for c1.
		{method: "POST", route: "/v1/plans", path: "/v1/plans", contentType: "application/yaml", raw: func() []byte { return []byte(gasPlanC1) },
			want: [7]int{401, 403, 403, 403, 403, 201, 201}},
		{method: "GET", route: "/v1/plans", path: "/v1/plans", want: [7]int{401, 403, 403, 403, 200, 200, 200}},
		{method: "GET", route: "/v1/plans/:id", path: "/v1/plans/gas-leak-c1", want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		// Each lists their own: an organisation's or responder's duties, a
		// dispatcher's community's (another community's dispatcher: theirs).
		{method: "GET", route: "/v1/duties", path: "/v1/duties?mine=1", want: [7]int{401, 403, 200, 200, 200, 200, 403}},
		// The duty is the property company's: the center's org user is not
		// given it (403, as dutyActor documents, whatever the community).
		{method: "POST", route: "/v1/duties/:id/ack", path: "/v1/duties/" + duty + "/ack", want: [7]int{401, 403, 403, 403, 403, 200, 200}},
		{method: "POST", route: "/v1/duties/:id/done", path: "/v1/duties/" + duty + "/done", want: [7]int{401, 403, 403, 403, 403, 200, 200}},

		// Alarms and incidents.
		{method: "POST", route: "/v1/alarms", path: "/v1/alarms", body: func(role string) any {
			return map[string]any{"key": "matrix-press-" + role, "type": "other", "location": geo.Offset(centre, 0, 30000)}
		}, want: [7]int{401, 202, 403, 403, 403, 403, 403}},
		{method: "GET", route: "/v1/alarms/:id", path: "/v1/alarms/" + alarm, want: [7]int{401, 200, 403, 403, 403, 403, 403}},
		{method: "GET", route: "/v1/incidents", path: "/v1/incidents", want: [7]int{401, 200, 403, 200, 200, 200, 200}},
		// r1 is 5 km away and was never asked: a responder sees only calls they got.
		{method: "GET", route: "/v1/incidents/:id", path: "/v1/incidents/" + incident, want: [7]int{401, 200, 404, 200, 404, 200, 200}},
		{method: "POST", route: "/v1/incidents/:id/redispatch", pathFor: incidentAction("redispatch"), want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "POST", route: "/v1/incidents/:id/assign", pathFor: incidentAction("assign"), body: func(role string) any {
			if role == "admin" {
				return map[string]any{"responder": "r3"} // r2 is busy with the dispatcher's
			}
			return map[string]any{"responder": "r2"}
		},
			want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "POST", route: "/v1/incidents/:id/false-alarm", pathFor: incidentAction("false-alarm"), want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		{method: "POST", route: "/v1/incidents/:id/mark-drill", pathFor: incidentAction("mark-drill"), want: [7]int{401, 403, 403, 403, 404, 200, 200}},
		// Only the resident who reported it may say they are safe.
		{method: "POST", route: "/v1/incidents/:id/safe", pathFor: incidentAction("safe"), want: [7]int{401, 200, 403, 403, 403, 403, 403}},
		// A fire is public: its CAP alert needs no token (others' are 404).
		{method: "GET", route: "/v1/incidents/:id/cap", path: "/v1/incidents/" + incident + "/cap", want: all200},
		{method: "GET", route: "/v1/cap/feed", path: "/v1/cap/feed", want: all200},
		{method: "GET", route: "/v1/stream", path: "/v1/stream", want: [7]int{401, 200, 200, 200, 200, 200, 200}},

		// Operations: the admin only.
		{method: "GET", route: "/v1/dev/sms", path: "/v1/dev/sms", want: [7]int{401, 403, 403, 403, 403, 403, 404}}, // Twilio is on: no dev sink
		{method: "GET", route: "/v1/dev/calls", path: "/v1/dev/calls", want: [7]int{401, 403, 403, 403, 403, 403, 404}},
		{method: "POST", route: "/v1/dev/sms/inbound", path: "/v1/dev/sms/inbound", body: func(string) any { return map[string]any{"from": "+8613700000801", "body": "1"} },
			want: [7]int{401, 403, 403, 403, 403, 403, 404}},
		{method: "GET", route: "/v1/admin/deadletters", path: "/v1/admin/deadletters", want: [7]int{401, 403, 403, 403, 403, 403, 200}},
		{method: "GET", route: "/v1/audit", path: "/v1/audit", want: [7]int{401, 403, 403, 403, 200, 200, 200}},

		// Last: ending things.
		// Signed out already, or with a bearer token: nothing to end, fine.
		{method: "POST", route: "/v1/logout", path: "/v1/logout", want: [7]int{204, 204, 204, 204, 204, 204, 204}},
		// The dispatcher resolves, and the admin resolving again is harmless.
		{method: "POST", route: "/v1/incidents/:id/resolve", path: "/v1/incidents/" + incident + "/resolve", want: [7]int{401, 403, 403, 403, 404, 200, 200}},
	}...)

	served := routeKeys(h.svc.app)
	covered := map[string]bool{}
	for _, tc := range rows {
		key := tc.method + " " + tc.route
		if !served[key] {
			t.Errorf("matrix row %s: no such route is served (renamed? remove the row)", key)
		}
		covered[key] = true
		for i, role := range matrixRoles {
			path := tc.path
			if tc.pathFor != nil {
				path = tc.pathFor(role)
			}
			ct, body := tc.contentType, []byte(nil)
			switch {
			case tc.raw != nil && ct == "multipart":
				var buf bytes.Buffer
				w := multipart.NewWriter(&buf)
				part, _ := w.CreateFormFile("file", "名单.xlsx")
				part.Write(tc.raw())
				w.Close()
				ct, body = w.FormDataContentType(), buf.Bytes()
			case tc.raw != nil:
				body = tc.raw()
			case tc.body != nil:
				ct = "application/json"
				body, _ = json.Marshal(tc.body(role))
			}
			status, out := h.statusOf(tc.method, path, tokens[role], ct, body)
			if status != tc.want[i] {
				t.Errorf("%s %s as %s: status %d, want %d: %v", tc.method, path, role, status, tc.want[i], out)
				continue
			}
			if status >= 400 && out != nil {
				errorOf(t, fmt.Sprintf("%s %s as %s", tc.method, path, role), out)
			}
		}
	}
	var missing []string
	for k := range served {
		if !covered[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes with no row in the access matrix: decide who may call each and add it:\n  %s", strings.Join(missing, "\n  "))
	}
}
