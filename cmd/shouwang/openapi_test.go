package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms/twiliofake"
)

// docChecker sits between the harness's HTTP client and the service and
// checks every exchange against the OpenAPI document the service serves:
// the route is documented, the status is one the operation lists, and the
// body fits the schema of its content type. A request the service
// accepted (2xx) must also fit the documented request: a client generated
// from the document must be able to send what works.
type docChecker struct {
	t      testing.TB
	doc    *openapi3.T
	router routers.Router
	next   http.RoundTripper

	mu   sync.Mutex
	seen map[string]bool // "GET /v1/incidents/{id} 200"
}

// The non-JSON media types the API answers with: their bodies are text to
// the checker, whose schemas say only "a string".
var docTextTypes = []string{"text/html", "text/xml", "application/cap+xml", "application/atom+xml", "text/css", "text/javascript",
	"image/svg+xml", "text/event-stream"}

func newDocChecker(t testing.TB, h *harness) *docChecker {
	t.Helper()
	status, src := h.raw("GET", "/v1/openapi.yaml", "", "", nil)
	if status != 200 {
		t.Fatalf("GET /v1/openapi.yaml without a token: %d %s", status, src)
	}
	doc, err := openapi3.NewLoader().LoadFromData(src)
	if err != nil {
		t.Fatalf("load the served OpenAPI document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("route the OpenAPI document: %v", err)
	}
	for _, ct := range docTextTypes {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
	return &docChecker{t: t, doc: doc, router: router, next: http.DefaultTransport, seen: map[string]bool{}}
}

func (c *docChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		// An endless stream: check the status and headers now and leave
		// the body to the caller.
		c.check(req, reqBody, resp, nil)
		return resp, nil
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	c.check(req, reqBody, resp, respBody)
	return resp, nil
}

func (c *docChecker) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	c.t.Helper()
	what := req.Method + " " + req.URL.RequestURI()
	ctx := context.Background()
	// The document's server is "/": route by the path, whatever host the
	// test server has.
	local := req.Clone(ctx)
	local.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	local.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := c.router.FindRoute(local)
	if err != nil {
		c.t.Errorf("%s is not in /v1/openapi.yaml: %v", what, err)
		return
	}
	c.mu.Lock()
	c.seen[fmt.Sprintf("%s %s %d", req.Method, route.Path, resp.StatusCode)] = true
	c.mu.Unlock()

	in := &openapi3filter.RequestValidationInput{
		Request: local, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	if resp.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			c.t.Errorf("%s was accepted (%d) but does not fit its documented request: %v", what, resp.StatusCode, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		c.t.Errorf("%s answered %d, which /v1/openapi.yaml does not describe: %v\nbody: %.600s", what, resp.StatusCode, err, respBody)
	}
}

// uncalled lists the documented operations no request reached.
func (c *docChecker) uncalled() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	called := map[string]bool{}
	for k := range c.seen {
		called[k[:strings.LastIndexByte(k, ' ')]] = true
	}
	var out []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			if !called[method+" "+path] {
				out = append(out, method+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// A tour of the whole API, every answer checked against the OpenAPI
// document it serves: a client generated from /v1/openapi.yaml reads what
// the service really sends, errors included.
func TestOpenAPIDescribesTheAnswers(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		checker := newDocChecker(t, h)
		h.http.Transport = checker
		admin := testAdminToken
		year := time.Now().In(responders.Zone).Year()

		// System.
		for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.yaml"} {
			if status, _ := h.raw("GET", p, "", "", nil); status != 200 {
				t.Errorf("GET %s: %d", p, status)
			}
		}
		h.must(200, "GET", "/v1/admin/deadletters", admin, nil)
		h.must(404, "GET", "/v1/dev/sms", admin, nil) // Twilio is on: no dev sink
		h.must(404, "GET", "/v1/dev/calls", admin, nil)
		h.must(404, "POST", "/v1/dev/sms/inbound", admin, map[string]any{"from": "+8613700000501", "body": "火"})

		// The registry.
		h.community("c1")
		h.must(409, "POST", "/v1/communities", admin, map[string]any{"id": "c1", "name": "又一个", "location": centre})
		h.must(200, "PATCH", "/v1/communities/c1", admin, map[string]any{"sms_number": communityNumber, "name_en": "Sunshine Garden"})
		h.must(200, "GET", "/v1/audit?community=c1&limit=1", admin, nil) // more follow: next_after
		h.must(200, "GET", "/v1/communities", admin, nil)
		h.must(200, "GET", "/v1/communities/c1", admin, nil)
		h.org("c1", "property", "property_company", "阳光物业", propertyPhone)
		h.org("c1", "health", "health_station", "社区卫生服务站", "+8613900001004")
		h.org("c1", "team1", "volunteer_team", "党员志愿服务队", teamPhone)
		h.must(200, "GET", "/v1/communities/c1/organisations?kind=volunteer_team", admin, nil)
		h.must(200, "GET", "/v1/communities/c1/organisations/property", admin, nil)
		h.must(200, "PATCH", "/v1/communities/c1/organisations/team1", admin, map[string]any{"name": "党员志愿队"})
		dispatcher := h.token("dispatcher", "c1", "d1")
		property := h.token("org", "c1", "property")

		const medicPhone = "+8613800000071"
		h.must(201, "POST", "/v1/communities/c1/responders", dispatcher, map[string]any{
			"id": "m1", "name": "王医生", "phone": medicPhone, "skills": []string{"medic"}, "team": "team1", "party_member": true,
			"certificates": []map[string]any{{"skill": "medic", "name": "红十字救护员证", "expires_at": time.Now().AddDate(1, 0, 0)}},
			"location":     geo.Offset(centre, 120, 0),
			"availability": []map[string]any{{"days": []int{1, 2, 3, 4, 5, 6, 7}, "start": "00:00", "end": "24:00"}},
		})
		h.must(422, "POST", "/v1/communities/c1/responders", dispatcher, map[string]any{"name": "没电话", "location": centre})
		h.must(400, "POST", "/v1/communities/c1/responders", dispatcher, map[string]any{"nmae": "typo"})
		if status, _ := h.raw("POST", "/v1/communities/c1/responders", dispatcher, "text/plain", "王医生"); status != 415 {
			t.Errorf("a responder as text/plain: %d, want 415", status)
		}
		h.must(200, "GET", "/v1/communities/c1/responders?limit=10", dispatcher, nil)
		medic := h.token("responder", "c1", "m1")
		h.must(200, "GET", "/v1/communities/c1/responders/m1", medic, nil)
		h.must(200, "PATCH", "/v1/communities/c1/responders/m1", medic, map[string]any{"available": true})
		h.must(403, "PATCH", "/v1/communities/c1/responders/m1", medic, map[string]any{"skills": []string{"firefighting"}})
		if status, out := h.importRoster(dispatcher, "c1", "?dry_run=1", "名单.xlsx", rosterXLSX(t, 3, nil)); status != 200 {
			t.Errorf("roster dry run: %d %v", status, out)
		}
		badRow := func(row int, cells []any) {
			if row == 2 {
				cells[1] = "1380000"
			}
		}
		if status, out := h.importRoster(dispatcher, "c1", "", "名单.xlsx", rosterXLSX(t, 3, badRow)); status != 422 {
			t.Errorf("roster with a bad row: %d %v", status, out)
		}

		h.must(201, "POST", "/v1/communities/c1/residents", dispatcher, map[string]any{
			"id": "res-501", "name": "李奶奶", "phone": "+8613700000501", "address": "3栋2单元501", "location": centre})
		resident := h.token("resident", "c1", "res-501")
		h.must(200, "GET", "/v1/communities/c1/residents", dispatcher, nil)
		h.must(200, "GET", "/v1/communities/c1/residents/res-501", resident, nil)
		h.must(200, "PATCH", "/v1/communities/c1/residents/res-501", dispatcher, map[string]any{"locale": "en"})
		h.must(201, "POST", "/v1/communities/c1/vulnerable-residents", dispatcher, map[string]any{
			"id": "old-102", "name": "赵大爷", "address": "5栋1单元102", "location": geo.Offset(centre, 50, 50), "vulnerable": "elderly_alone",
			"needs": "助行器", "contact": "女儿 +8613900000000"})
		h.must(200, "GET", "/v1/communities/c1/vulnerable-residents", dispatcher, nil)
		h.must(200, "GET", "/v1/communities/c1/vulnerable-residents/old-102", dispatcher, nil)

		// Access: no token, a role that may not, another community.
		h.must(401, "GET", "/v1/taxonomy", "", nil)
		h.must(403, "POST", "/v1/communities", resident, map[string]any{"name": "x", "location": centre})
		h.must(404, "GET", "/v1/communities/elsewhere", dispatcher, nil)
		h.must(200, "GET", "/v1/taxonomy", resident, nil)

		// Signing in from a browser: staff by password, the resident by a
		// texted link (res-501 reads English now).
		h.must(201, "POST", "/v1/users", dispatcher, map[string]any{"username": "wuye", "password": "property-pass-1", "role": "org",
			"community": "c1", "subject": "property", "name": "阳光物业"})
		h.must(422, "POST", "/v1/users", admin, map[string]any{"username": "x", "password": "short", "role": "admin"})
		if resp, out := h.signInAnswer("wuye", "wrong password"); resp.StatusCode != 401 {
			t.Errorf("a wrong password: %d %v", resp.StatusCode, out)
		}
		web := h.signIn("wuye", "property-pass-1")
		web.must(200, "GET", "/v1/session", nil)
		web.must(204, "POST", "/v1/logout", nil)
		h.must(401, "GET", "/v1/session", "", nil)
		h.must(202, "POST", "/v1/login/sms", "", map[string]any{"phone": "13700000501"})
		signInLink := tokenIn(t, h.waitTexts("+8613700000501", 1, "Sign-in link")[0])
		h.raw("GET", "/o/"+signInLink, "", "", nil)
		if resp, _ := h.pressLoginButton(signInLink); resp.StatusCode != 303 {
			t.Errorf("the sign-in button: %d", resp.StatusCode)
		}

		// Readiness.
		h.must(201, "POST", "/v1/communities/c1/grids", dispatcher, map[string]any{"id": "grid-1", "name": "1 网格", "location": centre})
		h.must(201, "POST", "/v1/communities/c1/grids", dispatcher, map[string]any{"name": "2 网格", "location": geo.Offset(centre, 800, 0)})
		h.must(200, "GET", "/v1/communities/c1/grids", property, nil)
		h.must(200, "GET", "/v1/communities/c1/readiness?need=2", property, nil)
		h.must(422, "GET", "/v1/communities/c1/readiness?need=0", property, nil)
		h.must(204, "DELETE", "/v1/communities/c1/grids/grid-1", dispatcher, nil)
		h.raw("GET", "/console/readiness?community=c1", "", "", nil)
		for _, page := range []string{"/", "/console", "/duties", "/app.css", "/common.js", "/resident.js", "/console.js",
			"/duties.js", "/sw.js", "/manifest.webmanifest", "/icon.svg"} {
			h.raw("GET", page, "", "", nil)
		}

		// Plans.
		h.must(200, "GET", "/v1/plans", dispatcher, nil)
		h.must(200, "GET", "/v1/plans/medical", dispatcher, nil)
		if status, out := h.postPlan(dispatcher, gasPlanC1); status != 201 {
			t.Errorf("post a plan: %d %v", status, out)
		}
		if status, out := h.postPlan(dispatcher, "id: bad\ntitle: {zh: 坏}\napplies_to: {types: [volcano]}\nsteps: []\n"); status != 422 {
			t.Errorf("post a bad plan: %d %v", status, out)
		}

		// An alarm and everything that follows it.
		alarm := h.press(resident, "k1", "medical", centre)
		incident := h.incidentOf(resident, alarm)
		link := tokenIn(t, h.waitTexts(medicPhone, 1, "接受或拒绝")[0])
		h.raw("GET", "/o/"+link, "", "", nil)
		h.raw("GET", "/o/no-such-link-0000", "", "", nil)
		if status, page := h.post(link, "accept"); status != 200 || !strings.Contains(page, "已确认由您前往") {
			t.Errorf("accept by link: %d\n%s", status, page)
		}
		inc := h.incident(dispatcher, incident)
		offer := inc["offers"].([]any)[0].(map[string]any)["id"].(string)
		h.incident(resident, incident) // plan_run is null for residents
		h.incident(medic, incident)
		h.must(200, "GET", "/v1/incidents?status=active&drills=exclude", dispatcher, nil)
		h.must(200, "GET", "/v1/incidents", resident, nil)
		h.must(400, "GET", "/v1/incidents?status=lost", dispatcher, nil)
		h.must(200, "GET", "/v1/alarms/"+alarm, resident, nil)

		h.reply(medicPhone, "3") // arrived
		receipt := url.Values{"MessageSid": {newSID()}, "MessageStatus": {"delivered"}, "AccountSid": {twiliofake.AccountSID}}
		const statusPath = "/v1/webhooks/twilio/status"
		if st := h.webhook(statusPath, receipt, twiliofake.Sign(twiliofake.AuthToken, testPublicURL+statusPath, receipt)); st != 204 {
			t.Errorf("delivery receipt: %d", st)
		}
		if st := h.webhook(statusPath, receipt, "bad"); st != 403 {
			t.Errorf("receipt with a bad signature: %d", st)
		}
		voicePath := "/v1/webhooks/twilio/voice?offer=" + offer
		keys := url.Values{"Digits": {"1"}, "AccountSid": {twiliofake.AccountSID}}
		if st := h.webhook(voicePath, keys, twiliofake.Sign(twiliofake.AuthToken, testPublicURL+voicePath, keys)); st != 200 {
			t.Errorf("keypad answer: %d", st)
		}

		var duty string
		eventually(t, 10*time.Second, func() bool {
			for _, d := range h.must(200, "GET", "/v1/duties?mine=1", property, nil)["duties"].([]any) {
				if m := d.(map[string]any); m["status"] == "assigned" {
					duty = m["id"].(string)
					return true
				}
			}
			return false
		}, says("the property company was given no duty"))
		h.must(200, "POST", "/v1/duties/"+duty+"/ack", property, nil)
		h.must(200, "POST", "/v1/duties/"+duty+"/done", property, nil)
		h.must(200, "GET", "/v1/duties", dispatcher, nil)
		h.must(400, "GET", "/v1/duties", property, nil)

		h.raw("GET", "/v1/cap/feed", "", "", nil)
		h.raw("GET", "/v1/incidents/"+incident+"/cap", "", "", nil) // medical is not public: 404
		h.raw("GET", "/v1/incidents/"+incident+"/cap", dispatcher, "", nil)
		h.must(200, "POST", "/v1/incidents/"+incident+"/resolve", dispatcher, nil)

		// The console's actions, the resident's "I am safe" and the live stream.
		h.must(409, "POST", "/v1/incidents/"+incident+"/redispatch", dispatcher, nil) // resolved
		fire := h.incidentOf(resident, h.press(resident, "k2", "fire", centre))
		h.must(200, "POST", "/v1/incidents/"+fire+"/redispatch", dispatcher, nil)
		h.must(422, "POST", "/v1/incidents/"+fire+"/assign", dispatcher, map[string]any{"responder": "nobody"})
		h.must(200, "POST", "/v1/incidents/"+fire+"/assign", dispatcher, map[string]any{"responder": "m1"})
		h.must(403, "POST", "/v1/incidents/"+fire+"/mark-drill", property, nil)
		h.must(200, "POST", "/v1/incidents/"+fire+"/mark-drill", dispatcher, nil)
		gas := h.incidentOf(resident, h.press(resident, "k3", "gas_leak", centre))
		h.must(200, "POST", "/v1/incidents/"+gas+"/false-alarm", dispatcher, nil)
		h.must(409, "POST", "/v1/incidents/"+gas+"/safe", resident, nil)
		flood := h.incidentOf(resident, h.press(resident, "k4", "flood", centre))
		h.must(404, "GET", "/v1/stream?incident="+flood, h.token("resident", "c1", "res-502"), nil)
		live, err := http.NewRequest("GET", h.base+"/v1/stream?incident="+flood, nil)
		if err != nil {
			t.Fatal(err)
		}
		live.Header.Set("Authorization", "Bearer "+resident)
		if resp, err := h.http.Do(live); err != nil || resp.StatusCode != 200 {
			t.Errorf("open the resident's stream: %v %v", resp, err)
		} else {
			first, _ := bufio.NewReader(resp.Body).ReadString('\n')
			resp.Body.Close()
			if first != "retry: 2000\n" {
				t.Errorf("the stream began %q", first)
			}
		}
		h.must(200, "POST", "/v1/incidents/"+flood+"/safe", resident, nil)

		// Drills.
		h.must(201, "POST", "/v1/communities/c1/drills", dispatcher, map[string]any{
			"id": "weekly", "spec": "0 10 * * 6", "type": "fire", "scope": map[string]any{"teams": []string{"team1"}}, "time_limit": "30m"})
		drill := h.must(201, "POST", "/v1/communities/c1/drills/run", dispatcher, map[string]any{
			"key": "tour", "type": "fire", "severity": "III", "scope": map[string]any{"teams": []string{"team1"}, "organisations": []string{"property"}},
			"notice": "本次为消防演练", "time_limit": "30m"})["id"].(string)
		h.must(200, "GET", "/v1/communities/c1/drills", dispatcher, nil)
		h.must(200, "GET", "/v1/drills/"+drill, dispatcher, nil)
		h.must(409, "GET", "/v1/drills/"+drill+"/report", dispatcher, nil)
		h.must(204, "DELETE", "/v1/communities/c1/drills/weekly", dispatcher, nil)
		h.raw("GET", "/console/drills/"+drill, "", "", nil)

		// Training budgets.
		budget := fmt.Sprintf("/v1/communities/c1/teams/team1/budgets/%d", year)
		h.must(200, "PUT", budget, dispatcher, map[string]any{"amount": "10000.00", "note": "街道拨款"})
		h.must(201, "POST", "/v1/communities/c1/teams/team1/training", dispatcher, map[string]any{
			"id": "aed", "course": "AED 使用", "date": fmt.Sprintf("%d-01-10", year), "amount": 1700.5, "attendees": []string{"王医生"}})
		h.must(200, "GET", budget, dispatcher, nil)
		h.must(200, "GET", "/v1/communities/c1/budgets", dispatcher, nil)
		h.must(204, "DELETE", "/v1/communities/c1/teams/team1/training/aed", dispatcher, nil)

		// Every operation was called at least once, so the checks above
		// covered the whole document.
		if missed := checker.uncalled(); len(missed) > 0 {
			t.Errorf("the tour never called these operations (add a call, so their answers are checked against the document):\n  %s",
				strings.Join(missed, "\n  "))
		}
	})
}
