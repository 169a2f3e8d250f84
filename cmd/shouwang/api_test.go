package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/sms/twiliofake"
)

// errorOf checks that an answer is the one error shape and returns its code
// and fields.
func errorOf(t *testing.T, what string, out map[string]any) (code string, fields map[string]any) {
	t.Helper()
	e, ok := out["error"].(map[string]any)
	if !ok {
		t.Fatalf("%s: answer has no error object: %v", what, out)
	}
	code, _ = e["code"].(string)
	if code == "" || e["message"] == nil {
		t.Fatalf("%s: error without code or message: %v", what, out)
	}
	fields, _ = e["fields"].(map[string]any)
	return code, fields
}

// request sends a request with exactly the headers given, for the cases
// h.raw cannot express (no Content-Type, another auth scheme…).
func (h *harness) request(method, path string, header map[string]string, body []byte) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// announce sends only a request's head, declaring a body of length bytes
// with Expect: 100-continue, and returns the final answer. The server
// (fasthttp) answers 100 Continue before it looks at the length, then
// refuses a body over its limit and closes the connection; a client
// already sending the body may see that close as a reset instead of the
// answer, so tests of the refusal never send the body at all.
func (h *harness) announce(method, path string, header map[string]string, length int) (*http.Response, []byte) {
	h.t.Helper()
	u, err := url.Parse(h.base)
	if err != nil {
		h.t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		h.t.Fatal(err)
	}
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n", method, path, u.Host, length)
	for k, v := range header {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		h.t.Fatalf("%s %s: send head: %v", method, path, err)
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			h.t.Fatalf("%s %s: read answer: %v", method, path, err)
		}
		if resp.StatusCode == http.StatusContinue {
			continue
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			h.t.Fatalf("%s %s: read answer body: %v", method, path, err)
		}
		return resp, data
	}
}

// A resident's phone gets a precise, machine-readable reason for every
// refused press, so the app can tell them what to fix.
func TestAPIAlarmInputErrors(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	resident := h.token("resident", "c1", "r1")

	for _, tc := range []struct {
		name      string
		body      string
		status    int
		code      string
		wantField string
	}{
		{"missing key", `{"type":"fire"}`, 422, "validation", "key"},
		{"unknown type", `{"key":"k","type":"volcano"}`, 422, "validation", "type"},
		{"lat 91", `{"key":"k","location":{"lat":91,"lng":121}}`, 422, "validation", "location"},
		{"no fix 0,0", `{"key":"k","location":{"lat":0,"lng":0}}`, 422, "validation", "location"},
		{"location without lng", `{"key":"k","location":{"lat":31.2}}`, 422, "validation", "location.lng"},
		{"lat is a string", `{"key":"k","location":{"lat":"31.2","lng":121.4}}`, 400, "validation", "location.lat"},
		{"lat beyond float64", `{"key":"k","location":{"lat":1e400,"lng":121.4}}`, 400, "validation", "location.lat"},
		{"invalid JSON", `{"key":"k",`, 400, "validation", "body"},
		{"two documents", `{"key":"k"}{"key":"k2"}`, 400, "validation", "body"},
		{"empty body", ``, 400, "validation", "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := h.raw("POST", "/v1/alarms", resident, "application/json", tc.body)
			var out map[string]any
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("answer is not JSON: %q", raw)
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			code, fields := errorOf(t, tc.name, out)
			if code != tc.code || fields[tc.wantField] == nil {
				t.Fatalf("error %v: want code %q naming field %q", out, tc.code, tc.wantField)
			}
		})
	}

	t.Run("text/plain", func(t *testing.T) {
		status, out := h.callAs("POST", "/v1/alarms", resident, "text/plain", `{"key":"k"}`)
		if _, fields := errorOf(t, "text/plain", out); status != 415 || fields["content-type"] == nil {
			t.Fatalf("status %d %v, want 415 naming content-type", status, out)
		}
	})
	t.Run("no Content-Type", func(t *testing.T) {
		resp, raw := h.request("POST", "/v1/alarms", map[string]string{"Authorization": "Bearer " + resident}, []byte(`{"key":"k"}`))
		if resp.StatusCode != 415 {
			t.Fatalf("status %d %s, want 415", resp.StatusCode, raw)
		}
	})
	t.Run("no token", func(t *testing.T) {
		status, out := h.call("POST", "/v1/alarms", "", map[string]any{"key": "k"})
		if code, _ := errorOf(t, "no token", out); status != 401 || code != "unauthenticated" {
			t.Fatalf("status %d %v, want 401 unauthenticated", status, out)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		if status, out := h.call("POST", "/v1/alarms", "sw_not-a-token", map[string]any{"key": "k"}); status != 401 {
			t.Fatalf("status %d %v, want 401", status, out)
		}
	})
	t.Run("Basic auth is not a bearer token", func(t *testing.T) {
		resp, raw := h.request("POST", "/v1/alarms", map[string]string{"Authorization": "Basic " + resident,
			"Content-Type": "application/json"}, []byte(`{"key":"k"}`))
		if resp.StatusCode != 401 {
			t.Fatalf("status %d %s, want 401", resp.StatusCode, raw)
		}
	})
	t.Run("dispatcher cannot press", func(t *testing.T) {
		status, out := h.call("POST", "/v1/alarms", h.token("dispatcher", "c1", ""), map[string]any{"key": "k"})
		if code, _ := errorOf(t, "dispatcher", out); status != 403 || code != "forbidden" {
			t.Fatalf("status %d %v, want 403 forbidden", status, out)
		}
	})
	// None of the refused presses became an alarm.
	if st, out := h.call("GET", "/v1/incidents", resident, nil); st != 200 || len(out["incidents"].([]any)) != 0 {
		t.Fatalf("refused presses left incidents behind: %d %v", st, out)
	}
}

// callAs is call with a chosen Content-Type.
func (h *harness) callAs(method, path, token, contentType string, body any) (int, map[string]any) {
	h.t.Helper()
	status, raw := h.raw(method, path, token, contentType, body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("%s %s: answer is not JSON (%d): %q", method, path, status, raw)
	}
	return status, out
}

// Oversized bodies are refused with the JSON error shape, whether our
// 16 KiB alarm limit or fiber's general 256 KiB limit catches them.
func TestAPIAlarmTooLarge(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	resident := h.token("resident", "c1", "r1")
	for _, tc := range []struct {
		name string
		size int
		code string
	}{
		{"over 16 KiB", 17 << 10, "too_large"},
		{"over 256 KiB", 300 << 10, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"key":"big","note":"` + strings.Repeat("x", tc.size) + `"}`
			// Expect: 100-continue, as phones' HTTP stacks do for large
			// bodies. Under the server-wide limit the body is read and the
			// route's own limit refuses it, on a connection kept open.
			req, _ := http.NewRequest("POST", h.base+"/v1/alarms", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+resident)
			req.Header.Set("Expect", "100-continue")
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second}}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			status := resp.StatusCode
			var out map[string]any
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("answer is not JSON (%d): %q", status, raw)
			}
			code, fields := errorOf(t, tc.name, out)
			if status != 413 || code != tc.code || fields["body"] == nil {
				t.Fatalf("status %d %v, want 413 %s naming body", status, out, tc.code)
			}
		})
	}
	// The service still takes a normal press afterwards, and handles it.
	h.incidentOf(resident, h.press(resident, "after-big", "fire", centre))
}

// Text that looks like SQL is just text: it is stored and shown exactly as
// the resident typed it. A press without a type is "other".
func TestAPIAlarmTextStoredVerbatim(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		resident := h.token("resident", "c1", "r1")
		dispatcher := h.token("dispatcher", "c1", "")
		address := `3栋'); DROP TABLE incidents; -- "501"`
		note := `' OR '1'='1'; DELETE FROM alarms WHERE ''=' \ $1 %_`
		out := h.must(202, "POST", "/v1/alarms", resident, map[string]any{"key": "sql-1", "location": centre, "address": address, "note": note})
		alarm := out["alarm_id"].(string)
		incident := h.incidentOf(resident, alarm)

		inc := h.incident(dispatcher, incident)
		if inc["address"] != address {
			t.Fatalf("incident address %q, want %q verbatim", inc["address"], address)
		}
		if inc["type"] != "other" {
			t.Fatalf("a press without a type made a %v incident, want other", inc["type"])
		}
		a := h.must(200, "GET", "/v1/alarms/"+alarm, resident, nil)
		if a["type"] != "other" || a["incident_id"] != incident {
			t.Fatalf("alarm state %v", a)
		}
		var gotAddress, gotNote string
		if err := h.svc.DB.QueryRow(context.Background(), `SELECT address, note FROM alarms WHERE id = $1`, alarm).Scan(&gotAddress, &gotNote); err != nil {
			t.Fatal(err)
		}
		if gotAddress != address || gotNote != note {
			t.Fatalf("stored address %q note %q, want them verbatim", gotAddress, gotNote)
		}
		// And the tables are all still there.
		if st, list := h.call("GET", "/v1/incidents", dispatcher, nil); st != 200 || len(list["incidents"].([]any)) != 1 {
			t.Fatalf("incident list after SQL-looking text: %d %v", st, list)
		}
	})
}

// A press whose text carries a NUL character is either refused up front or
// handled like any other; it must never be accepted (202) and then lost.
func TestAPIAlarmWithNULBecomesIncidentOrIsRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		resident := h.token("resident", "c1", "r1")
		status, out := h.call("POST", "/v1/alarms", resident, map[string]any{"key": "nul-1", "type": "fire", "location": centre,
			"address": "3栋\x00501", "note": "help\x00"})
		if status == 422 {
			return // refused: the phone can tell the resident
		}
		if status != 202 {
			t.Fatalf("status %d %v, want 202 or 422", status, out)
		}
		alarm := out["alarm_id"].(string)
		var attached bool
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && !attached {
			st, a := h.call("GET", "/v1/alarms/"+alarm, resident, nil)
			attached = st == 200 && a["incident_id"] != nil
			time.Sleep(50 * time.Millisecond)
		}
		if !attached {
			t.Fatalf("alarm %s with a NUL in its address was accepted (202) on %s but never became an incident", alarm, store)
		}
	})
}

// When JetStream cannot store an alarm the phone is told to retry (503 with
// Retry-After), never told it was received; readiness says so too.
func TestAPIUnavailableBusRefusesAlarms(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	resident := h.token("resident", "c1", "r1")
	h.must(200, "GET", "/readyz", "", nil)

	h.svc.Bus.Conn().Close()

	for i := range 2 { // a retry with the same key fares the same
		resp, raw := h.request("POST", "/v1/alarms", map[string]string{"Authorization": "Bearer " + resident,
			"Content-Type": "application/json"}, []byte(`{"key":"while-down","type":"fire"}`))
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("try %d: answer is not JSON: %q", i, raw)
		}
		if resp.StatusCode != 503 {
			t.Fatalf("try %d: status %d %v, want 503", i, resp.StatusCode, out)
		}
		if code, _ := errorOf(t, "bus down", out); code != "unavailable" {
			t.Fatalf("try %d: error %v, want code unavailable", i, out)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Fatalf("try %d: 503 without Retry-After", i)
		}
	}
	resp, raw := h.request("GET", "/readyz", nil, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(raw), "nats") {
		t.Fatalf("readyz with the bus closed: %d %s (Retry-After %q)", resp.StatusCode, raw, resp.Header.Get("Retry-After"))
	}
	h.must(200, "GET", "/healthz", "", nil)
}

// Who may do what, endpoint by endpoint. Another community's things are not
// shown to exist (404); a known caller without the right role gets 403.
func TestAccessControl(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	h.community("c2")
	h.responder("c1", person{"r1", "+8613800000101", []string{"medic"}, 5000, true, true})
	h.responder("c1", person{"r2", "+8613800000102", []string{"medic"}, 5000, true, true})
	reporter := h.token("resident", "c1", "res-1")
	alarm := h.press(reporter, "k1", "fire", centre)
	incident := h.incidentOf(reporter, alarm)

	tokens := map[string]string{
		"anonymous":        "",
		"resident":         reporter,
		"responder":        h.token("responder", "c1", "r1"),
		"org":              h.token("org", "c1", "c1-center"),
		"other-dispatcher": h.token("dispatcher", "c2", ""),
		"dispatcher":       h.token("dispatcher", "c1", ""),
		"admin":            testAdminToken,
	}
	// Every route the service serves, as every role (access_test.go).
	checkAccessMatrix(t, h, tokens, reporter, incident, alarm)

	// The other community's dispatcher sees none of c1's incidents, and asking
	// for them by name finds nothing.
	list := h.must(200, "GET", "/v1/incidents", tokens["other-dispatcher"], nil)
	if got := list["incidents"].([]any); len(got) != 0 {
		t.Fatalf("dispatcher of c2 sees incidents %v", got)
	}
	h.must(404, "GET", "/v1/incidents?community=c1", tokens["other-dispatcher"], nil)
	h.must(404, "GET", "/v1/communities/c1/responders/r1", tokens["other-dispatcher"], nil)
	if st, _ := h.call("PATCH", "/v1/communities/c1/responders/r1", tokens["other-dispatcher"], map[string]any{"available": false}); st != 404 {
		t.Fatalf("dispatcher of c2 patched a c1 responder: %d", st)
	}

	t.Run("responder changes only their own availability and location", func(t *testing.T) {
		responder := tokens["responder"]
		moved := geo.Offset(centre, 10, 10)
		out := h.must(200, "PATCH", "/v1/communities/c1/responders/r1", responder, map[string]any{"available": false, "location": moved})
		if out["available"] != false {
			t.Fatalf("patch answer %v", out)
		}
		for _, forbidden := range []map[string]any{
			{"skills": []string{"medic", "firefighting"}},
			{"certificates": []any{}},
			{"phone": "+8613800000199"},
			{"name": "冒名"},
			{"available": true, "skills": []string{}},
		} {
			status, out := h.call("PATCH", "/v1/communities/c1/responders/r1", responder, forbidden)
			if code, _ := errorOf(t, "responder patch", out); status != 403 || code != "forbidden" {
				t.Errorf("responder patching %v: status %d %v, want 403", forbidden, status, out)
			}
		}
		// Someone else's record does not exist for them.
		h.must(404, "PATCH", "/v1/communities/c1/responders/r2", responder, map[string]any{"available": false})
		h.must(404, "GET", "/v1/communities/c1/responders/r2", responder, nil)

		r := h.must(200, "GET", "/v1/communities/c1/responders/r1", tokens["dispatcher"], nil)
		skills := r["skills"].([]any)
		if r["available"] != false || len(skills) != 1 || skills[0] != "medic" || r["name"] != "志愿者r1" || r["phone"] != "+8613800000101" {
			t.Fatalf("responder record after self-service: %v", r)
		}
		if r2 := h.must(200, "GET", "/v1/communities/c1/responders/r2", tokens["dispatcher"], nil); r2["available"] != true {
			t.Fatalf("r2 changed by r1: %v", r2)
		}
	})

	t.Run("dispatcher mints only their own community's non-admin tokens", func(t *testing.T) {
		dispatcher := tokens["dispatcher"]
		for _, req := range []map[string]string{
			{"role": "admin"},
			{"role": "resident", "community": "c2", "subject": "x"},
			{"role": "dispatcher", "community": "c2"},
		} {
			status, out := h.call("POST", "/v1/tokens", dispatcher, req)
			if code, _ := errorOf(t, "dispatcher mint", out); status != 403 || code != "forbidden" {
				t.Errorf("dispatcher minting %v: status %d %v, want 403", req, status, out)
			}
		}
		// What it may mint works, and only in its community.
		tok := h.must(201, "POST", "/v1/tokens", dispatcher, map[string]string{"role": "responder", "community": "c1", "subject": "r2"})["token"].(string)
		h.must(200, "GET", "/v1/communities/c1/responders/r2", tok, nil)
		h.must(404, "GET", "/v1/communities/c2", tok, nil)
		// A token for someone who does not exist is refused.
		status, out := h.call("POST", "/v1/tokens", dispatcher, map[string]string{"role": "responder", "community": "c1", "subject": "ghost"})
		if _, fields := errorOf(t, "ghost", out); status != 422 || fields["subject"] == nil {
			t.Fatalf("token for a missing responder: %d %v", status, out)
		}
	})
}

// Without Twilio the texts go to the dev sink, which the admin — and only
// the admin — can read.
func TestAccessDevSMSWithDevSink(t *testing.T) {
	h := start(t, "sqlite", func(c *Config) { c.TwilioAccountSID, c.TwilioAuthToken, c.TwilioFrom = "", "", "" })
	h.community("c1")
	h.responder("c1", person{"m1", "+8613800000201", []string{"medic"}, 100, true, true})
	resident := h.token("resident", "c1", "res-1")
	h.press(resident, "k", "medical", centre)

	var msgs []any
	eventually(t, 10*time.Second, func() bool {
		msgs = h.must(200, "GET", "/v1/dev/sms?to=%2B8613800000201", testAdminToken, nil)["messages"].([]any)
		return len(msgs) >= 1
	}, func() string { return fmt.Sprintf("dev sink never recorded the offer to m1: %v", msgs) })
	h.must(403, "GET", "/v1/dev/sms", h.token("dispatcher", "c1", ""), nil)
	h.must(403, "GET", "/v1/dev/sms", resident, nil)
	h.must(401, "GET", "/v1/dev/sms", "", nil)
}

// A copy of the database does not give anyone a working token: only the
// hex SHA-256 of each token is stored.
func TestTokensStoredHashed(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		raw := h.token("dispatcher", "c1", "")
		h.must(200, "GET", "/v1/communities/c1", raw, nil) // the token works

		sum := sha256.Sum256([]byte(raw))
		want := hex.EncodeToString(sum[:])
		rows, err := h.svc.DB.Query(context.Background(), `SELECT hash, role, community_id, subject, created_by FROM tokens`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		found := false
		for rows.Next() {
			var hash, role, community, subject, createdBy string
			if err := rows.Scan(&hash, &role, &community, &subject, &createdBy); err != nil {
				t.Fatal(err)
			}
			for _, col := range []string{hash, role, community, subject, createdBy} {
				if strings.Contains(col, raw) || strings.Contains(col, strings.TrimPrefix(raw, "sw_")) {
					t.Fatalf("the raw token is stored in the tokens table: %q", col)
				}
			}
			if hash == want {
				found = true
				if role != "dispatcher" || community != "c1" {
					t.Fatalf("token row %s %s", role, community)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !found {
			t.Fatalf("no tokens row with hash %s (hex sha256 of the token)", want)
		}
		// The stored hash is not itself a token.
		h.must(401, "GET", "/v1/communities/c1", want, nil)
	})
}

// lockedBuffer collects log text written by many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLogged is start with the service's log written to w.
func startLogged(t *testing.T, store string, w io.Writer, tweak func(*Config)) *harness {
	t.Helper()
	cfg := testConfig(t, store)
	fake := twiliofake.New(t)
	cfg.TwilioHTTPClient = fake.Client()
	if tweak != nil {
		tweak(&cfg)
	}
	svc, err := Start(context.Background(), cfg, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	return &harness{t: t, svc: svc, base: "http://" + svc.Addr, twilio: fake, cfg: cfg, http: &http.Client{Timeout: 10 * time.Second}}
}

// Logs are read by more people than the registry is: a responder's phone
// number appears there only masked.
func TestMaskPhonesInLogs(t *testing.T) {
	var logs lockedBuffer
	h := startLogged(t, "sqlite", &logs, nil)
	h.community("c1")
	medic, other := "+8613800000301", "+8613800000302"
	h.responder("c1", person{"m1", medic, []string{"medic"}, 100, true, true})
	h.responder("c1", person{"m2", other, []string{"medic"}, 200, true, true})
	resident := h.token("resident", "c1", "res-1")
	dispatcher := h.token("dispatcher", "c1", "")

	// A resident asks for a sign-in text, and a stranger for one too.
	residentPhone, stranger := "+8613700000303", "+8613700000304"
	h.must(201, "POST", "/v1/communities/c1/residents", dispatcher, map[string]any{"id": "res-1", "name": "李奶奶", "phone": residentPhone})
	h.must(202, "POST", "/v1/login/sms", "", map[string]any{"phone": residentPhone})
	h.must(202, "POST", "/v1/login/sms", "", map[string]any{"phone": stranger})
	h.waitTexts(residentPhone, 1, "登录")

	incident := h.incidentOf(resident, h.press(resident, "k", "medical", centre))
	h.waitTexts(medic, 1, "回复 1 接受")
	h.waitTexts(other, 1, "回复 1 接受")
	if st := h.reply(medic, "1"); st != 200 {
		t.Fatalf("reply: %d", st)
	}
	if st := h.reply(other, "2"); st != 200 {
		t.Fatalf("reply: %d", st)
	}
	h.waitTexts(medic, 1, "已确认由您前往")
	h.must(200, "POST", "/v1/incidents/"+incident+"/resolve", dispatcher, nil)
	h.waitTexts(medic, 1, "已处置完毕")
	eventually(t, 5*time.Second, func() bool {
		text := logs.String()
		return strings.Contains(text, "reply handled") && strings.Count(text, "msg=sent") >= 4
	}, func() string { return "the flow never logged its texts and replies:\n" + logs.String() })

	text := logs.String()
	for _, phone := range []string{medic, other, centerPhone, residentPhone, stranger} {
		if strings.Contains(text, phone) || strings.Contains(text, strings.TrimPrefix(phone, "+")) {
			t.Errorf("log has the full number %s:\n%s", phone, text)
		}
	}
	for _, phone := range []string{medic, other, stranger} {
		if !strings.Contains(text, sms.Mask(phone)) {
			t.Errorf("log never names %s in its masked form %s:\n%s", phone, sms.Mask(phone), text)
		}
	}
}

// Text with a NUL character is either refused with a 4xx or stored as sent,
// the same on both stores; it never fails with a 500.
func TestRegistryNULIsRefusedOrKept(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.responder("c1", person{"r1", "+8613800000501", []string{"medic"}, 100, true, true})
		const name = "王\x00五"
		for _, path := range []string{
			"/v1/communities/c1",
			"/v1/communities/c1/organisations/c1-center",
			"/v1/communities/c1/responders/r1",
		} {
			status, out := h.call("PATCH", path, testAdminToken, map[string]any{"name": name})
			switch {
			case status >= 400 && status < 500:
				if _, fields := errorOf(t, path, out); fields["name"] == nil {
					t.Errorf("PATCH %s refused without naming the field: %v", path, out)
				}
			case status == 200:
				if got := h.must(200, "GET", path, testAdminToken, nil)["name"]; got != name {
					t.Errorf("PATCH %s accepted %q but stored %q", path, name, got)
				}
			default:
				t.Errorf("PATCH %s with a NUL in the name on %s: status %d %v, want 422 or 200", path, store, status, out)
			}
		}
	})
}

// The registry answers with what was stored, on both stores: a patch
// changes only what it names, and a bad patch changes nothing.
func TestRegistryRoundTrip(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.responder("c1", person{"r1", "+8613800000401", []string{"medic"}, 100, true, true})
		h.responder("c1", person{"r2", "+8613800000402", []string{"firefighting"}, 100, true, true})
		dispatcher := h.token("dispatcher", "c1", "")

		expectError := func(want int, field, method, path string, body any) {
			t.Helper()
			status, out := h.call(method, path, dispatcher, body)
			if _, fields := errorOf(t, method+" "+path, out); status != want || fields[field] == nil {
				t.Fatalf("%s %s %v: status %d %v, want %d naming %s", method, path, body, status, out, want, field)
			}
		}

		// Community.
		c := h.must(200, "GET", "/v1/communities/c1", dispatcher, nil)
		if c["name"] != "测试社区" || c["locale"] != "zh-CN" {
			t.Fatalf("community %v", c)
		}
		moved := geo.Offset(centre, 100, 0)
		h.must(200, "PATCH", "/v1/communities/c1", dispatcher, map[string]any{"name_en": "Test Community", "location": moved})
		expectError(400, "body", "PATCH", "/v1/communities/c1", map[string]any{"nmae": "typo"})
		expectError(422, "location", "PATCH", "/v1/communities/c1", map[string]any{"name": "不该保存", "location": geo.Point{}})
		expectError(422, "locale", "PATCH", "/v1/communities/c1", map[string]any{"locale": "fr"})
		c = h.must(200, "GET", "/v1/communities/c1", dispatcher, nil)
		loc := c["location"].(map[string]any)
		if c["name"] != "测试社区" || c["name_en"] != "Test Community" || loc["lat"] != moved.Lat || loc["lng"] != moved.Lng {
			t.Fatalf("community after patches: %v (want name kept, name_en and location changed)", c)
		}

		// Organisation.
		orgPath := "/v1/communities/c1/organisations/c1-center"
		o := h.must(200, "GET", orgPath, dispatcher, nil)
		if o["kind"] != "emergency_center" || o["duty_phone"] != centerPhone {
			t.Fatalf("organisation %v", o)
		}
		h.must(200, "PATCH", orgPath, dispatcher, map[string]any{"name": "街道应急中心", "duty_phone": "+8613900009001"})
		expectError(400, "body", "PATCH", orgPath, map[string]any{"kind": "police_office"}) // kind is not patchable
		expectError(422, "duty_phone", "PATCH", orgPath, map[string]any{"duty_phone": "13900009001"})
		expectError(422, "duty_phone", "PATCH", orgPath, map[string]any{"duty_phone": ""}) // the center must stay reachable
		o = h.must(200, "GET", orgPath, dispatcher, nil)
		if o["name"] != "街道应急中心" || o["duty_phone"] != "+8613900009001" {
			t.Fatalf("organisation after patches: %v", o)
		}
		h.must(404, "GET", "/v1/communities/c1/organisations/nope", dispatcher, nil)

		// Responder.
		rPath := "/v1/communities/c1/responders/r1"
		h.must(200, "PATCH", rPath, dispatcher, map[string]any{"phone": "+8613800000499", "available": false,
			"skills": []string{"medic", "firefighting"}, "location": moved})
		expectError(422, "phone", "PATCH", rPath, map[string]any{"phone": "13800000499"})
		expectError(422, "phone", "PATCH", rPath, map[string]any{"phone": "+86 138 0000 0499"})
		expectError(422, "skills", "PATCH", rPath, map[string]any{"skills": []string{"juggling"}})
		expectError(400, "body", "PATCH", rPath, map[string]any{"avaliable": true})
		expectError(400, "available", "PATCH", rPath, map[string]any{"available": "yes"})
		if st, out := h.call("PATCH", rPath, dispatcher, map[string]any{"phone": "+8613800000402"}); st != 409 {
			t.Fatalf("taking r2's phone: %d %v, want 409", st, out)
		}
		r := h.must(200, "GET", rPath, dispatcher, nil)
		rloc := r["location"].(map[string]any)
		skills := r["skills"].([]any)
		if r["phone"] != "+8613800000499" || r["available"] != false || len(skills) != 2 || rloc["lat"] != moved.Lat || r["name"] != "志愿者r1" {
			t.Fatalf("responder after patches: %v", r)
		}
		list := h.must(200, "GET", "/v1/communities/c1/responders", dispatcher, nil)["responders"].([]any)
		phones := map[string]any{}
		for _, x := range list {
			m := x.(map[string]any)
			phones[m["id"].(string)] = m["phone"]
		}
		if len(list) != 2 || phones["r1"] != "+8613800000499" || phones["r2"] != "+8613800000402" {
			t.Fatalf("responder list %v", phones)
		}
		h.must(404, "GET", "/v1/communities/c1/responders/nope", dispatcher, nil)
	})
}
