package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/sms/twiliofake"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// centre of the test community: a block in Shanghai.
var centre = geo.Point{Lat: 31.2304, Lng: 121.4737}

const (
	testAdminToken = "test-admin-token"
	testPublicURL  = "https://shouwang.example.org" // as Twilio sees us, behind a proxy
	testFrom       = "+8610690000000"
)

// harness is one running Shouwang with a fake Twilio behind the real client.
type harness struct {
	t      testing.TB
	svc    *Service
	base   string
	twilio *twiliofake.Server
	cfg    Config
	http   *http.Client
}

// stores are the two stores every scenario runs on.
var stores = []string{"sqlite", "postgres"}

func eachStore(t *testing.T, fn func(t *testing.T, store string)) {
	for _, s := range stores {
		t.Run(s, func(t *testing.T) { fn(t, s) })
	}
}

func testConfig(t testing.TB, store string) Config {
	cfg := Config{
		HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), NATSReplicas: 1, AdminToken: testAdminToken,
		PublicURL: testPublicURL, WaveTimeout: time.Minute, SMSRate: 1000, LogFormat: "text",
		// As in production, but calls are off unless a test turns them on.
		SMSPerRecipient: 6, SMSIdenticalWindow: time.Hour, LinkTTL: 12 * time.Hour,
		TwilioAccountSID: twiliofake.AccountSID, TwilioAuthToken: twiliofake.AuthToken, TwilioFrom: testFrom,
	}
	if store == "postgres" {
		cfg.DatabaseURL = storagetest.PostgresURL(t)
	}
	return cfg
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SHOUWANG_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func start(t testing.TB, store string, tweak func(*Config)) *harness {
	t.Helper()
	cfg := testConfig(t, store)
	fake := twiliofake.New(t)
	cfg.TwilioHTTPClient = fake.Client()
	if tweak != nil {
		tweak(&cfg)
	}
	return startWith(t, cfg, fake, testLogger(t))
}

// startWith starts the service with a config and logger of the test's own.
func startWith(t testing.TB, cfg Config, fake *twiliofake.Server, log *slog.Logger) *harness {
	t.Helper()
	svc, err := Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start service: %v", err)
	}
	h := &harness{t: t, svc: svc, base: "http://" + svc.Addr, twilio: fake, cfg: cfg, http: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(func() { h.svc.Close(context.Background()) })
	// Runs before the service closes (cleanups run last first).
	t.Cleanup(h.checkEveryTextFromATemplate)
	return h
}

// restart stops the service and starts it again on the same data dir and
// database, as a new process would.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.svc.Close(context.Background()); err != nil {
		h.t.Fatalf("stop: %v", err)
	}
	cfg := h.cfg
	cfg.HTTPAddr = "127.0.0.1:0"
	svc, err := Start(context.Background(), cfg, testLogger(h.t))
	if err != nil {
		h.t.Fatalf("restart: %v", err)
	}
	h.svc, h.base = svc, "http://"+svc.Addr
}

// checkEveryTextFromATemplate fails the test if any text queued or sent
// was not produced from a named template with its parameters: free-form
// text cannot be registered with a carrier.
func (h *harness) checkEveryTextFromATemplate() {
	t := h.t
	ctx := context.Background()
	// What Twilio got first: every text it has was queued before it was
	// sent, so the outbox read after this holds them all.
	var sent []twiliofake.Message
	if h.twilio != nil {
		sent = h.twilio.Messages()
	}
	rows, err := h.svc.DB.Query(ctx, `SELECT id, template, params, locale, body, channel FROM sms_outbox`)
	if err != nil {
		t.Errorf("read outbox: %v", err)
		return
	}
	defer rows.Close()
	bodies := map[string]bool{}
	for rows.Next() {
		var id, tpl, params, locale, body, channel string
		if err := rows.Scan(&id, &tpl, &params, &locale, &body, &channel); err != nil {
			t.Errorf("scan outbox: %v", err)
			return
		}
		var p map[string]string
		if err := json.Unmarshal([]byte(params), &p); err != nil {
			t.Errorf("text %s: params %q: %v", id, params, err)
			continue
		}
		if _, ok := sms.Templates[tpl]; !ok {
			t.Errorf("text %s has no template (%q): %q", id, tpl, body)
			continue
		}
		if want := sms.Render(tpl, locale, p, strings.HasPrefix(body, sms.DrillPrefix)); want != body {
			t.Errorf("text %s is not its template %s rendered:\n got  %q\n want %q", id, tpl, body, want)
		}
		bodies[body] = true
	}
	if err := rows.Err(); err != nil {
		t.Errorf("read outbox: %v", err)
		return
	}
	for _, m := range sent {
		if !bodies[m.Body] {
			t.Errorf("Twilio got a text that is in no outbox row: %q", m.Body)
		}
	}
}

// call makes a request and decodes a JSON answer into a map.
func (h *harness) call(method, path, token string, body any) (int, map[string]any) {
	h.t.Helper()
	status, raw := h.raw(method, path, token, "application/json", body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			h.t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return status, out
}

func (h *harness) raw(method, path, token, contentType string, body any) (int, []byte) {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.base+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
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
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// must calls and fails the test unless the status is want.
func (h *harness) must(want int, method, path, token string, body any) map[string]any {
	h.t.Helper()
	status, out := h.call(method, path, token, body)
	if status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %v", method, path, status, want, out)
	}
	return out
}

// token issues a token as the admin.
func (h *harness) token(role, community, subject string) string {
	h.t.Helper()
	out := h.must(201, "POST", "/v1/tokens", testAdminToken, map[string]string{"role": role, "community": community, "subject": subject})
	return out["token"].(string)
}

// community registers a community with an emergency center.
func (h *harness) community(id string) {
	h.t.Helper()
	h.must(201, "POST", "/v1/communities", testAdminToken, map[string]any{"id": id, "name": "测试社区", "location": centre})
	h.must(201, "POST", "/v1/communities/"+id+"/organisations", testAdminToken,
		map[string]any{"id": id + "-center", "kind": "emergency_center", "name": "社区应急中心", "duty_phone": centerPhone})
}

const centerPhone = "+8613900009000"

type person struct {
	id, phone string
	skills    []string
	north     float64 // metres from the centre
	certValid bool
	available bool
}

// responder registers a person north of the centre.
func (h *harness) responder(community string, p person) {
	h.t.Helper()
	var certs []map[string]any
	for _, s := range p.skills {
		expires := time.Now().AddDate(1, 0, 0)
		if !p.certValid {
			expires = time.Now().AddDate(0, 0, -1)
		}
		certs = append(certs, map[string]any{"skill": s, "name": s + " cert", "expires_at": expires})
	}
	h.must(201, "POST", "/v1/communities/"+community+"/responders", testAdminToken, map[string]any{
		"id": p.id, "name": "志愿者" + p.id, "phone": p.phone, "skills": p.skills, "certificates": certs,
		"location": geo.Offset(centre, p.north, 0), "available": p.available,
	})
}

func (h *harness) press(token, key, typ string, where geo.Point) string {
	h.t.Helper()
	out := h.must(202, "POST", "/v1/alarms", token, map[string]any{"key": key, "type": typ, "location": where, "address": "3栋2单元501"})
	if out["status"] != "received" {
		h.t.Fatalf("alarm answer %v", out)
	}
	return out["alarm_id"].(string)
}

// incidentOf waits until the alarm is attached and returns its incident id.
func (h *harness) incidentOf(resident, alarmID string) string {
	h.t.Helper()
	var id string
	eventually(h.t, 20*time.Second, func() bool {
		status, out := h.call("GET", "/v1/alarms/"+alarmID, resident, nil)
		if status == 200 && out["incident_id"] != nil {
			id = out["incident_id"].(string)
			return true
		}
		return false
	}, says("alarm %s never became part of an incident", alarmID))
	return id
}

func (h *harness) incident(token, id string) map[string]any {
	return h.must(200, "GET", "/v1/incidents/"+id, token, nil)
}

// reply posts a text from a phone to the webhook, signed as Twilio would.
func (h *harness) reply(from, body string) int {
	h.t.Helper()
	form := url.Values{"MessageSid": {fmt.Sprintf("SM%032x", time.Now().UnixNano())}, "From": {from}, "To": {testFrom}, "Body": {body}, "AccountSid": {twiliofake.AccountSID}}
	return h.webhook("/v1/webhooks/twilio/sms", form, twiliofake.Sign(twiliofake.AuthToken, testPublicURL+"/v1/webhooks/twilio/sms", form))
}

func (h *harness) webhook(path string, form url.Values, signature string) int {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if signature != "" {
		req.Header.Set("X-Twilio-Signature", signature)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// textsTo returns the bodies the fake Twilio received for a phone.
func (h *harness) textsTo(phone string) []string {
	var out []string
	for _, m := range h.twilio.MessagesTo(phone) {
		out = append(out, m.Body)
	}
	return out
}

func (h *harness) waitTexts(phone string, n int, contains string) []string {
	h.t.Helper()
	var got []string
	eventually(h.t, 10*time.Second, func() bool {
		got = nil
		for _, b := range h.textsTo(phone) {
			if strings.Contains(b, contains) {
				got = append(got, b)
			}
		}
		return len(got) >= n
	}, func() string {
		return fmt.Sprintf("%s never got %d texts containing %q; got %q", phone, n, contains, h.textsTo(phone))
	})
	return got
}

// eventually polls cond until it holds or the time is up; then it fails
// the test with what describe says (called only then, so it can show the
// latest state).
func eventually(t testing.TB, within time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal(describe())
}

func says(format string, args ...any) func() string {
	return func() string { return fmt.Sprintf(format, args...) }
}

func offersByResponder(inc map[string]any) map[string]string {
	out := map[string]string{}
	for _, o := range inc["offers"].([]any) {
		m := o.(map[string]any)
		out[m["responder"].(string)] = m["status"].(string)
	}
	return out
}

func timelineKinds(inc map[string]any) []string {
	var out []string
	for _, e := range inc["timeline"].([]any) {
		out = append(out, e.(map[string]any)["kind"].(string))
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
