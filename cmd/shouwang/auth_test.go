package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cookieUser is a browser signed in by the session cookie: it sends the
// cookie, and the CSRF value the page keeps, as a page would.
type cookieUser struct {
	h      *harness
	cookie string
	csrf   string
}

// signIn posts a username and password and returns the signed-in browser;
// the test fails unless it worked.
func (h *harness) signIn(username, password string) *cookieUser {
	h.t.Helper()
	resp, out := h.signInAnswer(username, password)
	if resp.StatusCode != 200 {
		h.t.Fatalf("sign in as %s: %d %v", username, resp.StatusCode, out)
	}
	c := sessionCookieOf(resp)
	if c == nil || c.Value == "" {
		h.t.Fatalf("sign in as %s: no sw_session cookie in %q", username, resp.Header.Values("Set-Cookie"))
	}
	csrf, _ := out["csrf"].(string)
	return &cookieUser{h: h, cookie: c.Value, csrf: csrf}
}

func (h *harness) signInAnswer(username, password string) (*http.Response, map[string]any) {
	h.t.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	resp, raw := h.request("POST", "/v1/login", map[string]string{"Content-Type": "application/json"}, body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("sign in as %s: answer is not JSON: %q", username, raw)
	}
	return resp, out
}

func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "sw_session" {
			return c
		}
	}
	return nil
}

// call sends a JSON request with the cookie; withCSRF adds X-CSRF-Token.
func (b *cookieUser) call(method, path string, body any, withCSRF bool) (int, map[string]any) {
	b.h.t.Helper()
	resp, raw := b.send(method, path, body, withCSRF)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			b.h.t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

func (b *cookieUser) send(method, path string, body any, withCSRF bool) (*http.Response, []byte) {
	b.h.t.Helper()
	header := map[string]string{"Cookie": "sw_session=" + b.cookie}
	var data []byte
	if body != nil {
		header["Content-Type"] = "application/json"
		data, _ = json.Marshal(body)
	}
	if withCSRF {
		header["X-CSRF-Token"] = b.csrf
	}
	return b.h.request(method, path, header, data)
}

// must calls with the CSRF value and fails the test unless the status is want.
func (b *cookieUser) must(want int, method, path string, body any) map[string]any {
	b.h.t.Helper()
	status, out := b.call(method, path, body, true)
	if status != want {
		b.h.t.Fatalf("%s %s in the browser: status %d, want %d: %v", method, path, status, want, out)
	}
	return out
}

// A dispatcher signs in on the console with a password: the cookie works
// like a token for reading; changing anything also needs the CSRF value,
// which another site cannot read; signing out or a lapsed session ends it.
func TestSignInWithPassword(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		ctx := context.Background()
		h.community("c1")
		h.community("c2")
		h.orgs("c1")

		// The admin creates a dispatcher; the dispatcher creates the
		// property company's user, and nothing else.
		user := h.must(201, "POST", "/v1/users", testAdminToken, map[string]any{"username": "Wang.Li", "password": "dispatch-pass-1",
			"role": "dispatcher", "community": "c1", "name": "王丽"})
		raw, _ := json.Marshal(user)
		if user["username"] != "wang.li" || user["subject"] != "wang.li" || strings.Contains(string(raw), "argon2") ||
			strings.Contains(string(raw), "dispatch-pass-1") || user["password"] != nil || user["password_hash"] != nil {
			t.Fatalf("created user %s: want wang.li without password or hash", raw)
		}
		dispatcherToken := h.token("dispatcher", "c1", "d1")
		h.must(201, "POST", "/v1/users", dispatcherToken, map[string]any{"username": "wuye", "password": "property-pass-1",
			"role": "org", "community": "c1", "subject": "c1-property", "name": "阳光物业"})
		h.must(403, "POST", "/v1/users", dispatcherToken, map[string]any{"username": "boss", "password": "dispatch-pass-2",
			"role": "dispatcher", "community": "c1"})
		h.must(403, "POST", "/v1/users", dispatcherToken, map[string]any{"username": "c2wuye", "password": "property-pass-2",
			"role": "org", "community": "c2", "subject": "c2-center"})
		h.must(403, "POST", "/v1/users", h.token("org", "c1", "c1-property"), map[string]any{"username": "x1x", "password": "long enough pw",
			"role": "org", "community": "c1", "subject": "c1-property"})
		if _, fields := errorOf(t, "short password", h.must(422, "POST", "/v1/users", testAdminToken, map[string]any{
			"username": "short", "password": "123456789", "role": "admin"})); fields["password"] == nil {
			t.Fatal("a 9-character password: want a problem with password")
		}
		h.must(409, "POST", "/v1/users", testAdminToken, map[string]any{"username": "WANG.LI", "password": "dispatch-pass-1",
			"role": "dispatcher", "community": "c1"})

		// Signing in: the answer says who, and sets a cookie scripts
		// cannot read, sent to this site only.
		resp, out := h.signInAnswer("wang.li", "dispatch-pass-1")
		c := sessionCookieOf(resp)
		if resp.StatusCode != 200 || out["role"] != "dispatcher" || out["community"] != "c1" || out["subject"] != "wang.li" ||
			out["name"] != "王丽" || out["csrf"] == "" || c == nil {
			t.Fatalf("sign in: %d %v %q", resp.StatusCode, out, resp.Header.Values("Set-Cookie"))
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || !c.Secure || c.MaxAge < 11*3600 {
			t.Fatalf("cookie %q: want HttpOnly, SameSite=Lax, Path=/, Secure (the public URL is https), 12 h", resp.Header.Values("Set-Cookie"))
		}
		b := &cookieUser{h: h, cookie: c.Value, csrf: out["csrf"].(string)}

		// A wrong password and an unknown user get the same answer, and
		// no cookie.
		var refusals []string
		for _, bad := range [][2]string{{"wang.li", "dispatch-pass-2"}, {"nobody", "dispatch-pass-1"}} {
			resp, out := h.signInAnswer(bad[0], bad[1])
			code, _ := errorOf(t, "bad sign-in", out)
			if resp.StatusCode != 401 || code != "unauthorized" || sessionCookieOf(resp) != nil {
				t.Fatalf("sign in as %s with a wrong password: %d %v", bad[0], resp.StatusCode, out)
			}
			refusals = append(refusals, out["error"].(map[string]any)["message"].(string))
		}
		if refusals[0] != refusals[1] {
			t.Fatalf("wrong password %q and unknown user %q must read the same", refusals[0], refusals[1])
		}

		// The cookie reads like a token.
		if st, _ := b.call("GET", "/v1/communities/c1", nil, false); st != 200 {
			t.Fatalf("GET with the cookie: %d", st)
		}
		if st, _ := b.call("GET", "/v1/communities/c2", nil, false); st != 404 {
			t.Fatalf("another community with the cookie: %d, want 404", st)
		}
		if s := b.must(200, "GET", "/v1/session", nil); s["csrf"] != b.csrf || s["role"] != "dispatcher" || s["name"] != "王丽" {
			t.Fatalf("session %v", s)
		}

		// Changing something needs the CSRF value as well.
		resident := map[string]any{"id": "res-1", "name": "李奶奶", "address": "3栋2单元501"}
		for _, csrf := range []string{"", "not-the-value"} {
			b2 := *b
			b2.csrf = csrf
			st, out := b2.call("POST", "/v1/communities/c1/residents", resident, csrf != "")
			if code, _ := errorOf(t, "no csrf", out); st != 403 || code != "csrf" {
				t.Fatalf("POST with the cookie and X-CSRF-Token %q: %d %v, want 403 csrf", csrf, st, out)
			}
		}
		h.must(404, "GET", "/v1/communities/c1/residents/res-1", testAdminToken, nil)
		b.must(201, "POST", "/v1/communities/c1/residents", resident)
		// Bearer tokens need no CSRF value: another site cannot send them.
		h.must(201, "POST", "/v1/communities/c1/residents", dispatcherToken, map[string]any{"id": "res-2", "name": "张大爷"})

		// Only hashes are stored: argon2id for passwords, SHA-256 for
		// the cookie.
		rows, err := h.svc.DB.Query(ctx, `SELECT username, password_hash FROM users ORDER BY username`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var name, hash string
			if err := rows.Scan(&name, &hash); err != nil {
				t.Fatal(err)
			}
			n++
			if !strings.HasPrefix(hash, "$argon2id$v=19$m=65536,t=1,p=2$") || strings.Count(hash, "$") != 5 || strings.Contains(hash, "-pass-") {
				t.Errorf("user %s: password stored as %q, want an argon2id PHC string", name, hash)
			}
		}
		rows.Close()
		if n != 2 {
			t.Fatalf("%d users stored, want wang.li and wuye", n)
		}
		sum := sha256.Sum256([]byte(b.cookie))
		var stored int
		if err := h.svc.DB.QueryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE token_hash = $1`, hex.EncodeToString(sum[:])).Scan(&stored); err != nil || stored != 1 {
			t.Fatalf("sessions with the cookie's SHA-256: %d (%v), want 1", stored, err)
		}
		if err := h.svc.DB.QueryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE token_hash = $1`, b.cookie).Scan(&stored); err != nil || stored != 0 {
			t.Fatal("the cookie value itself is stored")
		}

		// Signing out needs the CSRF value too (another site must not sign
		// people out), ends the session and clears the cookie.
		if st, _ := b.call("POST", "/v1/logout", nil, false); st != 403 {
			t.Fatalf("sign out without the CSRF value: %d, want 403", st)
		}
		resp, _ = b.send("POST", "/v1/logout", nil, true)
		if c := sessionCookieOf(resp); resp.StatusCode != 204 || c == nil || c.Value != "" || c.Expires.After(time.Now()) {
			t.Fatalf("sign out: %d %q, want 204 and the cookie cleared", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
		for _, p := range []string{"/v1/session", "/v1/communities/c1"} {
			if st, out := b.call("GET", p, nil, false); st != 401 {
				t.Fatalf("GET %s after signing out: %d %v, want 401", p, st, out)
			}
		}
		// Public routes do not mind a stale cookie, and one can sign in again.
		if resp, _ := b.send("GET", "/v1/cap/feed?community=c1", nil, false); resp.StatusCode != 200 {
			t.Fatalf("the public feed with a stale cookie: %d", resp.StatusCode)
		}
		again := h.signIn("wang.li", "dispatch-pass-1")

		// A session in use is extended, cookie and all, once half its time
		// is gone; one unused past its time is over.
		sum = sha256.Sum256([]byte(again.cookie))
		setExpiry := func(at time.Time) {
			t.Helper()
			if _, err := h.svc.DB.Exec(ctx, `UPDATE sessions SET expires_at = $2 WHERE token_hash = $1`, hex.EncodeToString(sum[:]),
				at.UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
		setExpiry(time.Now().Add(time.Hour))
		resp, _ = again.send("GET", "/v1/session", nil, false)
		if c := sessionCookieOf(resp); resp.StatusCode != 200 || c == nil || c.Value != again.cookie || c.MaxAge < 11*3600 {
			t.Fatalf("a session with an hour left, in use: %d %q, want the same cookie for 12 h more", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
		if resp, _ = again.send("GET", "/v1/session", nil, false); sessionCookieOf(resp) != nil {
			t.Fatal("a fresh session's cookie was set again")
		}
		setExpiry(time.Now().Add(-time.Minute))
		if st, out := again.call("GET", "/v1/session", nil, false); st != 401 {
			t.Fatalf("an expired session: %d %v, want 401", st, out)
		}
		if err := h.svc.DB.QueryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE token_hash = $1`, hex.EncodeToString(sum[:])).Scan(&stored); err != nil || stored != 0 {
			t.Fatalf("the expired session is still stored (%v)", err)
		}
	})
}

// Five wrong passwords for one username lock it out (from that address)
// for a while, even with the right password; other users still sign in.
func TestSignInRateLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.must(201, "POST", "/v1/users", testAdminToken, map[string]any{"username": "li", "password": "right password",
			"role": "dispatcher", "community": "c1"})
		h.must(201, "POST", "/v1/users", testAdminToken, map[string]any{"username": "wang", "password": "right password",
			"role": "dispatcher", "community": "c1"})
		for i := range 5 {
			if resp, out := h.signInAnswer("li", "guess "+strconv.Itoa(i)); resp.StatusCode != 401 {
				t.Fatalf("guess %d: %d %v, want 401", i+1, resp.StatusCode, out)
			}
		}
		resp, out := h.signInAnswer("LI", "right password")
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if code, _ := errorOf(t, "locked", out); resp.StatusCode != 429 || code != "rate_limited" || retry < 1 || retry > 60 {
			t.Fatalf("after 5 wrong passwords: %d Retry-After %q %v, want 429 within a minute", resp.StatusCode, resp.Header.Get("Retry-After"), out)
		}
		if sessionCookieOf(resp) != nil {
			t.Fatal("a locked-out sign-in set a cookie")
		}
		h.signIn("wang", "right password")
	})
}

// Org users on the duties page see and act on their own organisation's
// duties only, exactly as with their tokens.
func TestOrgUserDutiesByCookie(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.orgs("c1")
		dispatcher := h.token("dispatcher", "c1", "")
		if st, out := h.postPlan(dispatcher, gasPlanC1); st != 201 {
			t.Fatalf("post plan: %d %v", st, out)
		}
		for _, u := range [][2]string{{"wuye", "c1-property"}, {"yeweihui", "c1-owners"}} {
			h.must(201, "POST", "/v1/users", dispatcher, map[string]any{"username": u[0], "password": "duty page pw", "role": "org",
				"community": "c1", "subject": u[1]})
		}
		property, owners := h.signIn("wuye", "duty page pw"), h.signIn("yeweihui", "duty page pw")

		resident := h.token("resident", "c1", "r1")
		incident := h.incidentOf(resident, h.press(resident, "k", "gas_leak", centre))
		h.waitTexts(propertyPhone, 1, "关闭燃气总阀")
		var valve string
		eventually(t, 10*time.Second, func() bool {
			if d := dutiesByStep(h.incident(dispatcher, incident))["shut_valve"]; d != nil {
				valve = d["id"].(string)
			}
			return valve != ""
		}, says("no valve duty"))

		mine := owners.must(200, "GET", "/v1/duties?mine=1", nil)["duties"].([]any)
		if len(mine) != 1 || mine[0].(map[string]any)["org"] != "c1-owners" {
			t.Fatalf("the owners' committee sees %v, want its one duty", mine)
		}
		owners.must(403, "POST", "/v1/duties/"+valve+"/ack", nil)
		if st, out := property.call("POST", "/v1/duties/"+valve+"/ack", nil, false); st != 403 {
			t.Fatalf("ack by cookie without the CSRF value: %d %v", st, out)
		}
		if out := property.must(200, "POST", "/v1/duties/"+valve+"/ack", nil); out["outcome"] != "acknowledged" {
			t.Fatalf("ack by cookie: %v", out)
		}
	})
}

// noRedirects is the harness's client without following redirects, to see
// the answer that sets the cookie.
func (h *harness) noRedirects() *http.Client {
	return &http.Client{Transport: h.http.Transport, Timeout: h.http.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// pressLoginButton posts the 登录 button of a sign-in link.
func (h *harness) pressLoginButton(token string) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.noRedirects().PostForm(h.base+"/o/"+token, url.Values{"action": {"login"}})
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp, string(page)
}

// A resident signs in with their phone: they ask for a text, open the
// link (which only shows a button, so a link scanner signs nobody in), and
// press 登录; the link works once. Whether a phone is registered is never
// told.
func TestResidentSignsInByText(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		ctx := context.Background()
		h.community("c1")
		h.community("c2")
		const phone, twoFlats = "+8613700000501", "+8613700000502"
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken, map[string]any{"id": "res-501", "name": "李奶奶",
			"phone": phone, "address": "3栋2单元501", "location": centre})
		// Someone with a flat in each community: the registration changed
		// last is taken when the page names no community.
		h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken, map[string]any{"id": "zhang-c1", "name": "张先生", "phone": twoFlats})
		time.Sleep(5 * time.Millisecond)
		h.must(201, "POST", "/v1/communities/c2/residents", testAdminToken, map[string]any{"id": "zhang-c2", "name": "张先生", "phone": twoFlats})

		// Typed as people type it.
		out := h.must(202, "POST", "/v1/login/sms", "", map[string]any{"phone": "137 0000 0501", "community": "c1"})
		if out["status"] != "sent_if_registered" {
			t.Fatalf("answer %v", out)
		}
		text := h.waitTexts(phone, 1, "登录链接")[0]
		if !strings.Contains(text, testPublicURL+"/o/") || !strings.Contains(text, "15分钟") {
			t.Fatalf("sign-in text %q: want a link to the public URL that works 15 minutes", text)
		}
		token := tokenIn(t, text)

		// Opening the link shows the button and signs nobody in.
		resp, page := h.request("GET", "/o/"+token, nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(page), `value="login"`) || !strings.Contains(string(page), "登录") {
			t.Fatalf("the link page: %d\n%s", resp.StatusCode, page)
		}
		if sessionCookieOf(resp) != nil {
			t.Fatal("opening the link set a cookie: a link scanner would sign in")
		}

		// The button signs in and goes to the resident page.
		resp, _ = h.pressLoginButton(token)
		c := sessionCookieOf(resp)
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" || c == nil || !c.HttpOnly || c.MaxAge < 29*24*3600 {
			t.Fatalf("pressing 登录: %d to %q, cookie %q: want 303 to / with a month-long session cookie",
				resp.StatusCode, resp.Header.Get("Location"), resp.Header.Values("Set-Cookie"))
		}
		b := &cookieUser{h: h, cookie: c.Value}
		s := b.must(200, "GET", "/v1/session", nil)
		if s["role"] != "resident" || s["subject"] != "res-501" || s["community"] != "c1" || s["name"] != "李奶奶" || s["csrf"] == "" {
			t.Fatalf("the resident's session: %v", s)
		}
		b.csrf = s["csrf"].(string)
		// The page can press the alarm with it.
		alarm := b.must(202, "POST", "/v1/alarms", map[string]any{"key": "web-1", "type": "medical", "location": centre})
		eventually(t, 10*time.Second, func() bool {
			st, out := b.call("GET", "/v1/alarms/"+alarm["alarm_id"].(string), nil, false)
			return st == 200 && out["incident_id"] != nil
		}, says("the resident's press never became an incident they can see"))

		// The link works once.
		resp, page2 := h.pressLoginButton(token)
		if resp.StatusCode != 410 || sessionCookieOf(resp) != nil || !strings.Contains(page2, "已用过") {
			t.Fatalf("the same link again: %d %q\n%s, want 410 and no cookie", resp.StatusCode, resp.Header.Values("Set-Cookie"), page2)
		}
		if resp, _ := h.request("GET", "/o/"+token, nil, nil); resp.StatusCode != 410 {
			t.Fatalf("opening a used link: %d, want 410", resp.StatusCode)
		}

		// Asking again at once sends nothing more (one text a minute); an
		// unknown phone gets the same answer and no text.
		h.must(202, "POST", "/v1/login/sms", "", map[string]any{"phone": phone})
		h.must(202, "POST", "/v1/login/sms", "", map[string]any{"phone": "+8613700000999"})
		var queued int
		if err := h.svc.DB.QueryRow(ctx, `SELECT COUNT(*) FROM sms_outbox WHERE template = 'login_link' AND to_phone IN ($1, $2)`,
			phone, "+8613700000999").Scan(&queued); err != nil || queued != 1 {
			t.Fatalf("%d sign-in texts (%v), want only the first", queued, err)
		}
		if _, fields := errorOf(t, "bad phone", h.must(422, "POST", "/v1/login/sms", "", map[string]any{"phone": "12345"})); fields["phone"] == nil {
			t.Fatal("a number that is no phone: want a problem with phone")
		}

		// Two flats: without a community, the one registered last.
		h.must(202, "POST", "/v1/login/sms", "", map[string]any{"phone": twoFlats})
		resp, _ = h.pressLoginButton(tokenIn(t, h.waitTexts(twoFlats, 1, "登录链接")[0]))
		zhang := &cookieUser{h: h, cookie: sessionCookieOf(resp).Value}
		if s := zhang.must(200, "GET", "/v1/session", nil); s["subject"] != "zhang-c2" || s["community"] != "c2" {
			t.Fatalf("two flats, no community named: %v, want the c2 registration", s)
		}
	})
}

// The users command creates the first users straight in the database, the
// password read from standard input or SHOUWANG_NEW_PASSWORD, never a flag.
func TestUsersCommand(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		run := func(stdin string, args ...string) (string, error) {
			var stdout, stderr bytes.Buffer
			args = append(append([]string{"add"}, args...), "--data-dir", h.cfg.DataDir, "--database-url", h.cfg.DatabaseURL)
			err := usersCmd(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
			return stdout.String() + stderr.String(), err
		}
		out, err := run("cli-password-1\n", "--username", "Zhao", "--role", "dispatcher", "--community", "c1", "--name", "赵调度")
		if err != nil || !strings.Contains(out, "user zhao created") {
			t.Fatalf("users add: %v\n%s", err, out)
		}
		if s := h.signIn("zhao", "cli-password-1").must(200, "GET", "/v1/session", nil); s["role"] != "dispatcher" || s["name"] != "赵调度" {
			t.Fatalf("the CLI's dispatcher signed in as %v", s)
		}

		t.Setenv("SHOUWANG_NEW_PASSWORD", "root-password-1")
		if out, err := run("", "--username", "root", "--role", "admin"); err != nil {
			t.Fatalf("an admin from SHOUWANG_NEW_PASSWORD: %v\n%s", err, out)
		}
		admin := h.signIn("root", "root-password-1")
		admin.must(201, "POST", "/v1/communities", map[string]any{"id": "c3", "name": "新社区", "location": centre})
		t.Setenv("SHOUWANG_NEW_PASSWORD", "")

		for _, tc := range []struct {
			stdin string
			args  []string
			want  string
		}{
			{"short\n", []string{"--username", "qian", "--role", "dispatcher", "--community", "c1"}, "password"},
			{"", []string{"--username", "qian", "--role", "dispatcher", "--community", "c1"}, "no password"},
			{"long enough pw\n", []string{"--username", "qian", "--role", "org", "--community", "c1", "--subject", "nobody"}, "subject"},
			{"long enough pw\n", []string{"--username", "qian"}, "want: users add"},
			{"long enough pw\n", []string{"--username", "zhao", "--role", "admin"}, "taken"},
		} {
			if out, err := run(tc.stdin, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("users add %v: %v (%s), want an error about %q", tc.args, err, out, tc.want)
			}
		}
	})
}
