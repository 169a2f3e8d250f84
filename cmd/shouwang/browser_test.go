package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/shouwang/shouwang/geo"
)

// Browser tests: Debian's Chromium, driven by chromedp, against the real
// binary (built and started as a child process, embedded NATS and SQLite,
// the SMS dev sink). scripts/ensure-tools.sh installs Chromium in CI.

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium for the test. With the flags the
// machine's closed network needs: no background connections to Google.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is missing (scripts/ensure-tools.sh installs it): %v", err)
		}
		t.Skipf("chromium is not installed (run scripts/ensure-tools.sh): %v", err)
	}
	// Not t.TempDir: Chromium's helper processes can still be writing
	// the profile for a moment after the browser has exited, and the
	// testing package fails a test whose temporary directory it cannot
	// remove at once.
	profile, err := os.MkdirTemp("", "shouwang-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(profile))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
		removeProfile(t, profile)
	})
	if err := chromedp.Run(ctx); err != nil { // start the browser now
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// removeProfile removes a browser profile, trying again while Chromium's
// last helper processes finish writing to it.
func removeProfile(t *testing.T, dir string) {
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
	}
	t.Logf("browser profile %s left behind: %v", dir, err)
}

// tab opens a browser of its own for one person (its own cookies and
// storage): the dispatcher, the resident and the property company each
// sign in apart, as on their own devices.
func tab(t *testing.T, width, height int64) context.Context {
	t.Helper()
	ctx := newBrowser(t)
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var page string
		_ = chromedp.Run(ctx, chromedp.OuterHTML("body", &page))
		t.Fatalf("%s: %v\npage: %.3000s", what, err, page)
	}
}

// waitText waits until the element's text contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string, within time.Duration) {
	t.Helper()
	js := fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.textContent.indexOf(%q)>=0})()`, sel, want)
	deadline := time.Now().Add(within)
	for {
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(js, &ok)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var body string
			_ = chromedp.Run(ctx, chromedp.Text("body", &body, chromedp.ByQuery))
			t.Fatalf("%s never said %q within %s; the page says:\n%.2000s", sel, want, within, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// site is the real binary serving on a port, with an API client for setup.
type site struct {
	*harness
	proc *process
}

var linkInText = regexp.MustCompile(`https?://\S+/o/[A-Za-z0-9_-]+`)

func startSite(t *testing.T) *site {
	t.Helper()
	return startSiteWith(t)
}

// startSiteWith is startSite with serve flags of the test's own.
func startSiteWith(t *testing.T, args ...string) *site {
	t.Helper()
	bin := buildBinary(t)
	p := startServe(t, bin, t.TempDir(), "", nil, args...)
	// The setup waits out any limit the flags set, as a client should.
	h := &harness{t: t, base: "http://" + p.addr, cfg: Config{}, http: &http.Client{Timeout: 30 * time.Second, Transport: politeTransport{}}}
	s := &site{harness: h, proc: p}
	h.community("c1")
	h.must(201, "POST", "/v1/communities/c1/organisations", testAdminToken,
		map[string]any{"id": "property", "kind": "property_company", "name": "阳光物业", "duty_phone": "+8613900009101"})
	h.must(201, "POST", "/v1/communities/c1/residents", testAdminToken, map[string]any{"id": "r501", "name": "李秀英",
		"phone": "+8613700000501", "address": "3栋2单元501", "location": geo.Offset(centre, 30, 20)})
	h.responder("c1", person{"m1", "+8613800000061", []string{"medic", "gas_safety"}, 150, true, true})
	h.must(201, "POST", "/v1/users", testAdminToken, map[string]any{"username": "dispatcher", "password": "correct-horse-battery",
		"role": "dispatcher", "community": "c1", "name": "值班调度员"})
	h.must(201, "POST", "/v1/users", testAdminToken, map[string]any{"username": "property", "password": "correct-horse-staple",
		"role": "org", "community": "c1", "subject": "property", "name": "阳光物业"})
	return s
}

// devTexts are the texts the dev sink recorded for phone.
func (s *site) devTexts(phone string) []string {
	s.t.Helper()
	out := s.must(200, "GET", "/v1/dev/sms?to="+url.QueryEscape(phone), testAdminToken, nil)
	var texts []string
	for _, m := range out["messages"].([]any) {
		texts = append(texts, fmt.Sprint(m.(map[string]any)["body"]))
	}
	return texts
}

// signIn signs a staff user in on a console or duties page.
func signIn(t *testing.T, ctx context.Context, base, page, user, password, ready string) {
	t.Helper()
	run(t, ctx, "sign in on "+page,
		chromedp.Navigate(base+page),
		chromedp.WaitVisible("#username", chromedp.ByQuery),
		chromedp.SendKeys("#username", user, chromedp.ByQuery),
		chromedp.SendKeys("#password", password, chromedp.ByQuery),
		chromedp.Click(`#login-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(ready, chromedp.ByQuery))
}

// signInResident signs the resident in the way residents do: their phone
// number, the text with a link, one tap.
func (s *site) signInResident(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, "ask for a sign-in text",
		chromedp.Navigate(s.base+"/"),
		chromedp.WaitVisible("#phone", chromedp.ByQuery),
		chromedp.SendKeys("#phone", "13700000501", chromedp.ByQuery),
		chromedp.Click(`#sms-form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#sms-sent", chromedp.ByQuery))
	var link string
	eventually(t, 10*time.Second, func() bool {
		for _, text := range s.devTexts("+8613700000501") {
			if m := linkInText.FindString(text); m != "" && strings.Contains(text, "登录") {
				link = m
				return true
			}
		}
		return false
	}, says("no sign-in link was texted to the resident"))
	// The link in the text names the public URL; this test serves elsewhere.
	link = s.base + link[strings.Index(link, "/o/"):]
	run(t, ctx, "open the sign-in link",
		chromedp.Navigate(link),
		chromedp.WaitVisible(`form button[type=submit]`, chromedp.ByQuery),
		chromedp.Click(`form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(".alarm.medical", chromedp.ByQuery))
}

// A resident taps 急救; the dispatcher's console, open since before,
// shows the incident within a second, without a reload.
func TestBrowserResidentAlarmShowsLiveOnConsole(t *testing.T) {
	s := startSite(t)
	console := tab(t, 1280, 800)
	signIn(t, console, s.base, "/console", "dispatcher", "correct-horse-battery", "#board")
	waitText(t, console, "#live", "实时", 5*time.Second)
	run(t, console, "mark the page", chromedp.Evaluate(`window.__sameLoad = true`, nil))

	phone := tab(t, 390, 844)
	s.signInResident(t, phone)
	run(t, phone, "share the phone's position",
		browser.GrantPermissions([]browser.PermissionType{browser.PermissionTypeGeolocation}).WithOrigin(s.base),
		emulation.SetGeolocationOverride().WithLatitude(centre.Lat).WithLongitude(centre.Lng).WithAccuracy(10))

	run(t, phone, "tap 急救", chromedp.Click(".alarm.medical", chromedp.ByQuery))
	waitText(t, phone, "#msg", "已收到", 10*time.Second)
	received := time.Now()
	waitText(t, console, "#cards", "急救", 5*time.Second)
	if took := time.Since(received); took > time.Second {
		t.Errorf("the console showed the incident %s after the resident's page said received, want within 1 s", took)
	}
	var same bool
	run(t, console, "check the page was not reloaded", chromedp.Evaluate(`window.__sameLoad === true`, &same))
	if !same {
		t.Error("the console reloaded to show the incident")
	}
	// The resident's page follows the incident live: the medic accepts by text.
	s.must(202, "POST", "/v1/dev/sms/inbound", testAdminToken, map[string]any{"from": "+8613800000061", "body": "1"})
	waitText(t, phone, "#d-helper", "已接受", 10*time.Second)
	waitText(t, console, "#cards", "已接受", 5*time.Second)
}

// The property company acknowledges its gas-leak duty on the duties page;
// the dispatcher's console shows it at once.
func TestBrowserDutyAcknowledgedUpdatesConsole(t *testing.T) {
	s := startSite(t)
	console := tab(t, 1280, 800)
	signIn(t, console, s.base, "/console", "dispatcher", "correct-horse-battery", "#board")
	duties := tab(t, 390, 844)
	signIn(t, duties, s.base, "/duties", "property", "correct-horse-staple", "#list")

	resident := s.token("resident", "c1", "r501")
	s.press(resident, "gas-1", "gas_leak", centre)
	waitText(t, duties, "#duties", "确认收到", 10*time.Second)
	waitText(t, console, "#cards", "已派发", 10*time.Second)

	run(t, duties, "acknowledge the duty", chromedp.Click(`#duties button.ack`, chromedp.ByQuery))
	acked := time.Now()
	waitText(t, console, "#cards", "已确认", 5*time.Second)
	if took := time.Since(acked); took > time.Second {
		t.Errorf("the console showed the acknowledgement after %s, want within 1 s", took)
	}
	waitText(t, duties, "#duties", "已确认", 5*time.Second)
}

// A press made with no network is kept on the phone, says so, and is sent
// once, with its key, when the network returns.
func TestBrowserOfflinePressIsSentOnceWhenOnline(t *testing.T) {
	s := startSite(t)
	phone := tab(t, 390, 844)
	s.signInResident(t, phone)
	// No position: the registered address stands in.
	run(t, phone, "refuse the position",
		browser.ResetPermissions(),
		network.EmulateNetworkConditions(true, 0, -1, -1))
	run(t, phone, "tap 火灾 offline", chromedp.Click(".alarm.fire", chromedp.ByQuery))
	waitText(t, phone, "#msg", "网络不通", 10*time.Second)
	var queued int
	run(t, phone, "read the phone's queue", chromedp.Evaluate(`JSON.parse(localStorage.getItem("sw-queue")||"[]").length`, &queued))
	if queued != 1 {
		t.Fatalf("queued presses = %d, want 1", queued)
	}
	dispatcher := s.token("dispatcher", "c1", "d1")
	time.Sleep(3500 * time.Millisecond) // the page retries while offline: nothing may get through
	if list := s.must(200, "GET", "/v1/incidents", dispatcher, nil)["incidents"].([]any); len(list) != 0 {
		t.Fatalf("an incident exists while the phone was offline: %v", list)
	}

	run(t, phone, "the network returns", network.EmulateNetworkConditions(false, 0, -1, -1))
	waitText(t, phone, "#msg", "已收到", 10*time.Second)
	time.Sleep(3500 * time.Millisecond) // another retry round: it must not send again
	list := s.must(200, "GET", "/v1/incidents", dispatcher, nil)["incidents"].([]any)
	if len(list) != 1 {
		t.Fatalf("incidents after the network returned = %d, want 1", len(list))
	}
	in := list[0].(map[string]any)
	if in["type"] != "fire" || in["reports"] != float64(1) || in["address"] != "3栋2单元501" {
		t.Errorf("incident = type %v, reports %v, address %v; want one fire report at the registered address",
			in["type"], in["reports"], in["address"])
	}
	run(t, phone, "read the phone's queue", chromedp.Evaluate(`JSON.parse(localStorage.getItem("sw-queue")||"[]").length`, &queued))
	if queued != 0 {
		t.Errorf("the phone still holds %d presses", queued)
	}
}

// TestBrowserScreenshots writes the pages at phone and desk sizes to
// $SHOUWANG_SCREENSHOTS (docs/screenshots in the repository).
func TestBrowserScreenshots(t *testing.T) {
	dir := os.Getenv("SHOUWANG_SCREENSHOTS")
	if dir == "" {
		t.Skip("set SHOUWANG_SCREENSHOTS=DIR to write the screenshots")
	}
	s := startSite(t)
	resident := s.token("resident", "c1", "r501")
	s.press(resident, "shot-1", "gas_leak", centre)
	s.press(resident, "shot-2", "medical", geo.Offset(centre, 400, -300))
	shoot := func(ctx context.Context, name string) {
		t.Helper()
		var png []byte
		run(t, ctx, "screenshot "+name, chromedp.Sleep(500*time.Millisecond), chromedp.FullScreenshot(&png, 100))
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	phone := tab(t, 390, 844)
	s.signInResident(t, phone)
	console := tab(t, 1280, 800)
	signIn(t, console, s.base, "/console", "dispatcher", "correct-horse-battery", "#board")
	duties := tab(t, 390, 844)
	signIn(t, duties, s.base, "/duties", "property", "correct-horse-staple", "#list")
	for _, size := range []struct {
		name          string
		width, height int64
	}{{"phone", 390, 844}, {"desk", 1280, 800}} {
		for _, p := range []struct {
			ctx        context.Context
			name, path string
			sel, want  string
		}{
			{phone, "resident", "/", ".alarms", "急救"},
			{console, "console", "/console", "#cards", "燃气"},
			{duties, "duties", "/duties", "#duties", "确认收到"},
		} {
			run(t, p.ctx, "resize", chromedp.EmulateViewport(size.width, size.height), chromedp.Navigate(s.base+p.path))
			waitText(t, p.ctx, p.sel, p.want, 10*time.Second)
			shoot(p.ctx, p.name+"-"+size.name)
		}
	}
}

// A press the server refuses for now (429, the phone's session sent too
// much) stays on the phone and is sent again, with its key, once
// Retry-After has passed: one incident, one report.
func TestBrowserPressRateLimitedIsSentAfterRetryAfter(t *testing.T) {
	s := startSiteWith(t, "--api-rate-token", "1", "--api-rate-token-burst", "5")
	phone := tab(t, 390, 844)
	s.signInResident(t, phone)
	var statuses []int
	run(t, phone, "spend the session's budget",
		chromedp.Evaluate(`Promise.all(Array.from({length: 10}, function () {
			return fetch("/v1/session", {credentials: "same-origin"}).then(function (r) { return r.status; });
		}))`, &statuses, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if count429 := len(statuses) - countInts(statuses, 200); count429 == 0 {
		t.Fatalf("10 requests at once under a burst of 5 were all served: %v", statuses)
	}
	run(t, phone, "tap 火灾", chromedp.Click(".alarm.fire", chromedp.ByQuery))
	waitText(t, phone, "#msg", "网络不通", 5*time.Second) // kept on the phone
	waitText(t, phone, "#msg", "已收到", 15*time.Second)

	dispatcher := s.token("dispatcher", "c1", "d1")
	time.Sleep(3500 * time.Millisecond) // another retry round: it must not send again
	list := s.must(200, "GET", "/v1/incidents", dispatcher, nil)["incidents"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["reports"] != float64(1) {
		t.Fatalf("incidents after a rate-limited press: %v, want one with one report", list)
	}
	var queued int
	run(t, phone, "read the phone's queue", chromedp.Evaluate(`JSON.parse(localStorage.getItem("sw-queue")||"[]").length`, &queued))
	if queued != 0 {
		t.Errorf("the phone still holds %d presses", queued)
	}
}

func countInts(list []int, v int) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}
