package main

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// sqlDrop and sqlOr are what someone probing for SQL injection types into
// every box and every URL.
const (
	sqlDrop = "'; DROP TABLE responders;--"
	sqlOr   = "1 OR 1=1"
)

// badInput is one request an API client may send by mistake or in malice,
// and how it must be refused: a status and the JSON error body, whose
// fields name what is wrong (field), or whose message says it (says).
type badInput struct {
	name, method, path string
	token              string
	contentType        string // "" sends no Content-Type
	body               any    // string or []byte; JSON-encoded otherwise
	status             int
	field              string
	says               string
}

// Bad input on every kind of endpoint gets a clear 4xx: oversized bodies
// 413, a wrong Content-Type 415, impossible coordinates, unknown types and
// enums a 400 or 422 naming the field, SQL-looking ids a 404 or 422. None
// is a 500, and afterwards the service is healthy with its data intact.
// (Alarms have their own table in TestAPIAlarmInputErrors.)
func TestBadInputIsRefusedClearly(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	h.responder("c1", person{id: "r1", phone: "+8613800000001", skills: []string{"medic"}, certValid: true, available: true})
	h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken, map[string]any{"id": "res1", "name": "王阿姨",
		"phone": "+8613800000101", "address": "3栋2单元501", "location": centre})
	admin := testAdminToken
	dispatcher := h.token("dispatcher", "c1", "")
	resident := h.token("resident", "c1", "res1")
	incident := h.incidentOf(resident, h.press(resident, "before-bad-input", "fire", centre))
	before := registrySnapshot(h)

	big := `{"name":"` + strings.Repeat("x", 300<<10) + `"}`
	esc := url.PathEscape
	goodPlan := "id: fire-c1\ntitle: {zh: 火灾预案}\napplies_to: {types: [fire]}\ncommunity: c1\nsteps:\n" +
		"  - {id: call, title: {zh: 报警}, assignee: emergency_center, due_minutes: 5}\n"
	loc := func(lat, lng any) map[string]any { return map[string]any{"lat": lat, "lng": lng} }
	responder := func(edit func(map[string]any)) map[string]any {
		r := map[string]any{"id": "r9", "name": "李四", "phone": "+8613800000009", "skills": []string{"medic"},
			"kind": "volunteer", "location": centre, "available": true}
		edit(r)
		return r
	}

	cases := []badInput{
		// Oversized bodies: the general 256 KiB limit, the small sign-in limit.
		{"community over 256 KiB", "POST", "/v1/communities", admin, "application/json", big, 413, "body", ""},
		{"responder over 256 KiB", "POST", "/v1/communities/c1/responders", admin, "application/json", big, 413, "body", ""},
		{"resident patch over 256 KiB", "PATCH", "/v1/communities/c1/residents/res1", admin, "application/json", big, 413, "body", ""},
		{"plan over 256 KiB", "POST", "/v1/plans", admin, "application/yaml", "id: x\n# " + strings.Repeat("x", 300<<10), 413, "body", ""},
		{"budget over 256 KiB", "PUT", "/v1/communities/c1/teams/t1/budgets/2026", admin, "application/json", big, 413, "body", ""},
		{"login over the sign-in limit", "POST", "/v1/login", "", "application/json",
			`{"username":"` + strings.Repeat("a", 64<<10) + `","password":"x"}`, 413, "body", ""},
		{"roster import over 8 MiB", "POST", "/v1/communities/c1/responders:import", admin, "multipart/form-data; boundary=x",
			bytes.Repeat([]byte("x"), 9<<20), 413, "body", ""},

		// Wrong Content-Type.
		{"community as text/plain", "POST", "/v1/communities", admin, "text/plain", `{"id":"c2","name":"x"}`, 415, "content-type", ""},
		{"responder as a form", "POST", "/v1/communities/c1/responders", admin, "application/x-www-form-urlencoded", "id=r9&name=x", 415, "content-type", ""},
		{"token without Content-Type", "POST", "/v1/tokens", admin, "", `{"role":"resident","community":"c1"}`, 415, "content-type", ""},
		{"login as XML", "POST", "/v1/login", "", "application/xml", `<login/>`, 415, "content-type", ""},
		{"plan as JSON", "POST", "/v1/plans", admin, "application/json", goodPlan, 415, "content-type", ""},
		{"roster import as JSON", "POST", "/v1/communities/c1/responders:import", admin, "application/json", `{"file":"x"}`, 415, "content-type", ""},
		{"assign as text/plain", "POST", "/v1/incidents/" + incident + "/assign", dispatcher, "text/plain", `{"responder":"r1"}`, 415, "content-type", ""},

		// Impossible coordinates.
		{"community at lat 91", "POST", "/v1/communities", admin, "application/json",
			map[string]any{"id": "c2", "name": "北极", "location": loc(91, 121.4)}, 422, "location", ""},
		{"responder at lng abc", "POST", "/v1/communities/c1/responders", admin, "application/json",
			responder(func(r map[string]any) { r["location"] = loc(31.2, "abc") }), 400, "location.lng", ""},
		{"responder at lat NaN", "POST", "/v1/communities/c1/responders", admin, "application/json",
			responder(func(r map[string]any) { r["location"] = loc("NaN", 121.4) }), 400, "location.lat", ""},
		{"responder at a bare NaN", "POST", "/v1/communities/c1/responders", admin, "application/json",
			`{"id":"r9","name":"李四","phone":"+8613800000009","kind":"volunteer","location":{"lat":NaN,"lng":121.4}}`, 400, "body", ""},
		{"responder at 0,0", "POST", "/v1/communities/c1/responders", admin, "application/json",
			responder(func(r map[string]any) { r["location"] = loc(0, 0) }), 422, "location", ""},
		{"resident at lat -91", "POST", "/v1/communities/c1/residents", admin, "application/json",
			map[string]any{"id": "res9", "name": "张三", "location": loc(-91, 121.4)}, 422, "location", ""},
		{"resident moved to lng 181", "PATCH", "/v1/communities/c1/residents/res1", admin, "application/json",
			map[string]any{"location": loc(31.2, 181)}, 422, "location", ""},
		{"grid at lat 1e400", "POST", "/v1/communities/c1/grids", admin, "application/json",
			`{"id":"g1","name":"一号网格","location":{"lat":1e400,"lng":121.4}}`, 400, "location.lat", ""},
		{"drill at lat 91", "POST", "/v1/communities/c1/drills/run", dispatcher, "application/json",
			map[string]any{"type": "fire", "location": loc(91, 121.4)}, 422, "location", ""},

		// Unknown incident types and bad enums.
		{"drill of an unknown type", "POST", "/v1/communities/c1/drills/run", dispatcher, "application/json",
			map[string]any{"type": "volcano"}, 422, "type", ""},
		{"drill schedule of an unknown type", "POST", "/v1/communities/c1/drills", dispatcher, "application/json",
			map[string]any{"spec": "0 9 * * 1", "type": "volcano"}, 422, "type", ""},
		{"drill of severity V", "POST", "/v1/communities/c1/drills/run", dispatcher, "application/json",
			map[string]any{"type": "fire", "severity": "V"}, 422, "severity", ""},
		{"drill that lasts forever", "POST", "/v1/communities/c1/drills/run", dispatcher, "application/json",
			map[string]any{"type": "fire", "time_limit": "forever"}, 422, "time_limit", ""},
		{"plan of an unknown type", "POST", "/v1/plans", admin, "application/yaml",
			strings.Replace(goodPlan, "[fire]", "[volcano]", 1), 422, "applies_to.types", ""},
		{"token of role superuser", "POST", "/v1/tokens", admin, "application/json",
			map[string]any{"role": "superuser", "community": "c1"}, 422, "role", ""},
		{"user of role root", "POST", "/v1/users", admin, "application/json",
			map[string]any{"username": "zhang", "password": "a long enough password", "role": "root", "community": "c1"}, 422, "role", ""},
		{"organisation of kind janitor", "POST", "/v1/communities/c1/organisations", admin, "application/json",
			map[string]any{"id": "o9", "kind": "janitor", "name": "保洁"}, 422, "kind", ""},
		{"responder of kind hero", "POST", "/v1/communities/c1/responders", admin, "application/json",
			responder(func(r map[string]any) { r["kind"] = "hero" }), 422, "kind", ""},
		{"responder skilled in juggling", "POST", "/v1/communities/c1/responders", admin, "application/json",
			responder(func(r map[string]any) { r["skills"] = []string{"juggling"} }), 422, "skills", ""},
		{"responder in locale xx", "POST", "/v1/communities/c1/responders", admin, "application/json",
			responder(func(r map[string]any) { r["locale"] = "xx-YY" }), 422, "locale", ""},
		{"responder with an unknown field", "POST", "/v1/communities/c1/responders", admin, "application/json",
			responder(func(r map[string]any) { r["skils"] = []string{"medic"} }), 400, "body", "skils"},
		{"resident vulnerable as bogus", "POST", "/v1/communities/c1/residents", admin, "application/json",
			map[string]any{"id": "res9", "name": "张三", "vulnerable": "bogus"}, 422, "vulnerable", ""},
		{"incidents of status bogus", "GET", "/v1/incidents?status=bogus", dispatcher, "", nil, 400, "status", ""},
		{"incidents with drills=maybe", "GET", "/v1/incidents?drills=maybe", dispatcher, "", nil, 400, "drills", ""},
		{"incidents with limit abc", "GET", "/v1/incidents?limit=abc", dispatcher, "", nil, 400, "limit", ""},
		{"roster import with dry_run=maybe", "POST", "/v1/communities/c1/responders:import?dry_run=maybe", admin,
			"", rosterForm(t), 400, "dry_run", ""},
		{"budget for year 20x5", "PUT", "/v1/communities/c1/teams/t1/budgets/20x5", admin, "application/json",
			map[string]any{"amount": "100"}, 422, "year", ""},
		{"budget for year 1900", "GET", "/v1/communities/c1/teams/t1/budgets/1900", admin, "", nil, 422, "year", ""},
		{"budget of minus 5 yuan", "PUT", "/v1/communities/c1/teams/t1/budgets/2026", admin, "application/json",
			map[string]any{"amount": "-5"}, 422, "amount", ""},
		{"budget amount as a word", "PUT", "/v1/communities/c1/teams/t1/budgets/2026", admin, "application/json",
			map[string]any{"amount": "lots"}, 422, "amount", ""},
		{"training on 31 February", "POST", "/v1/communities/c1/teams/t1/training", admin, "application/json",
			map[string]any{"date": "2026-02-31", "course": "急救培训", "amount": "100", "attendee_count": 5}, 422, "date", ""},
		{"assign with a number for a responder", "POST", "/v1/incidents/" + incident + "/assign", dispatcher,
			"application/json", `{"responder":12}`, 400, "responder", ""},

		// SQL-looking strings in ids, query parameters and body fields.
		{"community id SQL in the path", "GET", "/v1/communities/" + esc(sqlDrop), admin, "", nil, 404, "", ""},
		{"responder id SQL in the path", "GET", "/v1/communities/c1/responders/" + esc(sqlOr), admin, "", nil, 404, "", ""},
		{"patch a responder by SQL id", "PATCH", "/v1/communities/c1/responders/" + esc(sqlDrop), admin, "application/json",
			map[string]any{"available": false}, 404, "", ""},
		{"resident id SQL in the path", "GET", "/v1/communities/c1/residents/" + esc(sqlOr), admin, "", nil, 404, "", ""},
		{"incident id SQL in the path", "GET", "/v1/incidents/" + esc(sqlDrop), dispatcher, "", nil, 404, "", ""},
		{"resolve an incident by SQL id", "POST", "/v1/incidents/" + esc(sqlOr) + "/resolve", dispatcher, "application/json",
			map[string]any{}, 404, "", ""},
		{"false alarm on an SQL id", "POST", "/v1/incidents/" + esc(sqlDrop) + "/false-alarm", dispatcher, "application/json",
			map[string]any{}, 404, "", ""},
		{"resident is safe on an SQL incident", "POST", "/v1/incidents/" + esc(sqlOr) + "/safe", resident, "application/json",
			map[string]any{}, 404, "", ""},
		{"acknowledge an SQL duty", "POST", "/v1/duties/" + esc(sqlDrop) + "/ack", admin, "application/json", map[string]any{}, 404, "", ""},
		{"vulnerable resident with an SQL id", "POST", "/v1/communities/c1/vulnerable-residents", admin, "application/json",
			map[string]any{"id": sqlDrop, "name": "李奶奶", "vulnerable": "elderly_alone", "location": centre}, 422, "id", ""},
		{"resident with an SQL id", "POST", "/v1/communities/c1/residents", admin, "application/json",
			map[string]any{"id": sqlOr, "name": "张三"}, 422, "id", ""},
		{"plan id SQL in the path", "GET", "/v1/plans/" + esc(sqlDrop), admin, "", nil, 404, "", ""},
		{"drill id SQL in the path", "GET", "/v1/drills/" + esc(sqlOr), admin, "", nil, 404, "", ""},
		{"alarm id SQL in the path", "GET", "/v1/alarms/" + esc(sqlDrop), resident, "", nil, 404, "", ""},
		{"incidents with status SQL", "GET", "/v1/incidents?status=" + url.QueryEscape(sqlOr), dispatcher, "", nil, 400, "status", ""},
		{"incidents with limit SQL", "GET", "/v1/incidents?limit=" + url.QueryEscape("1; DROP TABLE incidents"), admin, "", nil, 400, "limit", ""},
		{"dispatcher asks for another community by SQL", "GET", "/v1/incidents?community=" + url.QueryEscape("c1' OR '1'='1"), dispatcher,
			"", nil, 404, "", ""},
		{"community with an SQL id", "POST", "/v1/communities", admin, "application/json",
			map[string]any{"id": sqlDrop, "name": "x", "location": centre}, 422, "id", ""},
		{"organisation with an SQL id", "POST", "/v1/communities/c1/organisations", admin, "application/json",
			map[string]any{"id": sqlOr, "kind": "property_company", "name": "物业"}, 422, "id", ""},
		{"responder with an SQL id", "POST", "/v1/communities/c1/responders", admin, "application/json",
			responder(func(r map[string]any) { r["id"] = sqlDrop }), 422, "id", ""},
		{"responder with an SQL phone", "POST", "/v1/communities/c1/responders", admin, "application/json",
			responder(func(r map[string]any) { r["phone"] = sqlOr }), 422, "phone", ""},
		{"assign an SQL responder", "POST", "/v1/incidents/" + incident + "/assign", dispatcher, "application/json",
			map[string]any{"responder": sqlDrop}, 422, "responder", ""},
		{"token for an SQL subject", "POST", "/v1/tokens", admin, "application/json",
			map[string]any{"role": "responder", "community": "c1", "subject": sqlOr}, 422, "subject", ""},
		{"token for an SQL community", "POST", "/v1/tokens", admin, "application/json",
			map[string]any{"role": "dispatcher", "community": sqlDrop}, 422, "community", ""},
		{"user with an SQL username", "POST", "/v1/users", admin, "application/json",
			map[string]any{"username": sqlDrop, "password": "a long enough password", "role": "dispatcher", "community": "c1"}, 422, "username", ""},
		{"login with SQL", "POST", "/v1/login", "", "application/json",
			map[string]any{"username": "admin' --", "password": sqlOr}, 401, "", ""},
		{"texted sign-in for an SQL phone", "POST", "/v1/login/sms", "", "application/json",
			map[string]any{"phone": sqlOr, "community": "c1"}, 422, "phone", ""},
		{"drill scope of SQL teams", "POST", "/v1/communities/c1/drills/run", dispatcher, "application/json",
			map[string]any{"type": "fire", "scope": map[string]any{"teams": []string{sqlDrop}}}, 422, "scope.teams", ""},
		{"training for an SQL team", "POST", "/v1/communities/c1/teams/" + esc(sqlOr) + "/training", admin, "application/json",
			map[string]any{"date": "2026-03-01", "course": "急救培训", "amount": "100", "attendee_count": 5}, 404, "", ""},
		{"readiness need SQL", "GET", "/v1/communities/c1/readiness?need=" + url.QueryEscape(sqlOr), admin, "", nil, 422, "need", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { h.refused(t, tc) })
	}

	// Still healthy, still taking presses, and nothing was dropped or added.
	h.must(200, "GET", "/healthz", "", nil)
	h.must(200, "GET", "/readyz", "", nil)
	if after := registrySnapshot(h); after != before {
		t.Fatalf("the registry changed under bad input:\nbefore %s\nafter  %s", before, after)
	}
	h.incidentOf(resident, h.press(resident, "after-bad-input", "medical", centre))
}

// refused sends one bad request and checks the answer.
func (h *harness) refused(t *testing.T, tc badInput) {
	t.Helper()
	header := map[string]string{}
	if tc.token != "" {
		header["Authorization"] = "Bearer " + tc.token
	}
	if tc.contentType != "" {
		header["Content-Type"] = tc.contentType
	}
	var body []byte
	switch b := tc.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	case []byte:
		body = b
	case multipartBody:
		body, header["Content-Type"] = b.data, b.contentType
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	var resp *http.Response
	var raw []byte
	if len(body) > 8<<20 {
		// Over the server-wide limit: only the head is sent (see announce).
		resp, raw = h.announce(tc.method, tc.path, header, len(body))
	} else {
		resp, raw = h.request(tc.method, tc.path, header, body)
	}
	if resp.StatusCode >= 500 {
		t.Fatalf("%s %s: status %d: %s", tc.method, tc.path, resp.StatusCode, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s %s: status %d, answer is not JSON (%s): %.300q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	if resp.StatusCode != tc.status {
		t.Fatalf("%s %s: status %d, want %d: %.500v", tc.method, tc.path, resp.StatusCode, tc.status, out)
	}
	_, fields := errorOf(t, tc.name, out)
	if tc.field != "" && fields[tc.field] == nil {
		t.Fatalf("%s %s: error does not name the field %q: %.500v", tc.method, tc.path, tc.field, out)
	}
	if tc.says != "" && !strings.Contains(strings.ToLower(string(raw)), strings.ToLower(tc.says)) {
		t.Fatalf("%s %s: error does not say %q: %.500v", tc.method, tc.path, tc.says, out)
	}
}

// multipartBody is a body with its own Content-Type (and boundary).
type multipartBody struct {
	data        []byte
	contentType string
}

// rosterForm is a small valid roster upload.
func rosterForm(t *testing.T) multipartBody {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	f, err := w.CreateFormFile("file", "roster.csv")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("姓名,手机号,技能,纬度,经度\n赵六,13800000077,急救,31.23,121.47\n"))
	w.Close()
	return multipartBody{b.Bytes(), w.FormDataContentType()}
}

// registrySnapshot is what the registry lists, for comparing before and after.
func registrySnapshot(h *harness) string {
	h.t.Helper()
	var parts []string
	for _, path := range []string{"/v1/communities", "/v1/communities/c1/responders", "/v1/communities/c1/residents",
		"/v1/communities/c1/organisations", "/v1/plans"} {
		_, raw := h.raw("GET", path, testAdminToken, "", nil)
		parts = append(parts, path+" "+string(raw))
	}
	return strings.Join(parts, "\n")
}
