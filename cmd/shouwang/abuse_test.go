package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
)

// withLimits sets the API's request limits.
func withLimits(ip float64, ipBurst int, token float64, tokenBurst int) func(*Config) {
	return func(c *Config) {
		c.APIRateIP, c.APIRateIPBurst, c.APIRateToken, c.APIRateTokenBurst = ip, ipBurst, token, tokenBurst
	}
}

// retryAfter checks a 429 the way a phone reads it: Retry-After in whole
// seconds, at least 1, and the usual error body with code rate_limited.
func retryAfter(t testing.TB, resp *http.Response, raw []byte) time.Duration {
	t.Helper()
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Fatalf("429 with Retry-After %q, want whole seconds >= 1", resp.Header.Get("Retry-After"))
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("429 answer is not JSON: %q", raw)
	}
	if e, _ := out["error"].(map[string]any); e == nil || e["code"] != "rate_limited" || e["message"] == nil {
		t.Fatalf("429 body %v, want {\"error\":{\"code\":\"rate_limited\",\"message\":…}}", out)
	}
	return time.Duration(secs) * time.Second
}

// politely sends a request as the resident page does: on 429 it waits for
// Retry-After and sends the same request again. It returns the final
// answer and how many 429s it met.
func (h *harness) politely(method, path, token, body string) (status int, raw []byte, refused int) {
	h.t.Helper()
	header := map[string]string{"Authorization": "Bearer " + token}
	if body != "" {
		header["Content-Type"] = "application/json"
	}
	for range 30 {
		resp, raw := h.request(method, path, header, []byte(body))
		if resp.StatusCode != http.StatusTooManyRequests {
			return resp.StatusCode, raw, refused
		}
		refused++
		time.Sleep(retryAfter(h.t, resp, raw))
	}
	h.t.Fatalf("%s %s: still 429 after 30 polite tries", method, path)
	return 0, nil, refused
}

// A resident pressing 100 times within a minute gets every press recorded
// (at once, or after the Retry-After the phone honours), one incident with
// all 100 reports, and the responders nearby one offer each — not 100.
func TestAbuseResidentPresses100Times(t *testing.T) {
	shipped, err := parseConfig("serve", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		limits func(*Config)
		// must429 says the limit is tight enough that some presses wait.
		must429 bool
	}{
		{"shipped limits", withLimits(shipped.APIRateIP, shipped.APIRateIPBurst, shipped.APIRateToken, shipped.APIRateTokenBurst), false},
		{"tight limits", withLimits(20, 40, 20, 20), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, "sqlite", tc.limits)
			h.community("c1")
			phones := []string{"+8613800000601", "+8613800000602", "+8613800000603"}
			for i, p := range phones {
				h.responder("c1", person{fmt.Sprintf("ff%d", i), p, []string{"firefighting"}, float64(100 + 50*i), true, true})
			}
			resident := h.token("resident", "c1", "res-1")
			spot, _ := json.Marshal(geo.Offset(centre, 20, 20))

			const presses, workers = 100, 8
			began := time.Now()
			var mu sync.Mutex
			alarms := map[string]string{} // key → alarm id
			refused, accepted := 0, 0
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := w; k < presses; k += workers {
						key := fmt.Sprintf("press-%03d", k)
						status, raw, n := h.politely("POST", "/v1/alarms", resident,
							fmt.Sprintf(`{"key":%q,"type":"fire","location":%s}`, key, spot))
						var out map[string]any
						_ = json.Unmarshal(raw, &out)
						mu.Lock()
						refused += n
						if status == 202 {
							accepted++
							alarms[key], _ = out["alarm_id"].(string)
						}
						mu.Unlock()
						if status != 202 {
							t.Errorf("press %s: status %d %s, want 202", key, status, raw)
						}
					}
				}()
			}
			wg.Wait()
			pressTime := time.Since(began)
			if tc.must429 && refused == 0 {
				t.Errorf("no press met a 429 under a burst of 20: is the per-token limit on?")
			}
			if !tc.must429 && refused > 0 {
				t.Errorf("%d presses met a 429 under the shipped limits: a resident's 100 presses must pass at once", refused)
			}

			// Every alarm is readable and part of the same one incident. The
			// resident's other device reads them, with a budget of its own.
			reader := h.token("resident", "c1", "res-1")
			incidentsOf := map[string]int{}
			for key, id := range alarms {
				var st int
				var a map[string]any
				eventually(t, 20*time.Second, func() bool {
					var raw []byte
					st, raw, _ = h.politely("GET", "/v1/alarms/"+id, reader, "")
					a = nil
					_ = json.Unmarshal(raw, &a)
					return st == 200 && a["incident_id"] != nil
				}, func() string { return fmt.Sprintf("alarm %s (%s) never joined an incident: %d %v", id, key, st, a) })
				incidentsOf[a["incident_id"].(string)]++
			}
			if len(incidentsOf) != 1 {
				t.Fatalf("presses made %d incidents %v, want one", len(incidentsOf), incidentsOf)
			}
			var incident string
			for id := range incidentsOf {
				incident = id
			}
			inc := h.incident(testAdminToken, incident)
			if inc["reports"].(float64) != presses {
				t.Errorf("incident has %v reports, want %d", inc["reports"], presses)
			}

			// Give the sender time to (wrongly) text again, then count.
			for _, p := range phones {
				h.waitTexts(p, 1, "回复 1 接受")
			}
			time.Sleep(300 * time.Millisecond)
			duplicates := 0
			for _, p := range phones {
				n := 0
				for _, b := range h.textsTo(p) {
					if strings.Contains(b, "回复 1 接受") {
						n++
					}
				}
				if n != 1 {
					duplicates += n - 1
					t.Errorf("%s got %d offer texts, want exactly 1", p, n)
				}
			}
			reportFault(t, faultRun{
				Fault: "resident presses 100 times a minute",
				Injected: fmt.Sprintf("100 fire presses, distinct keys, one spot, one token, %d goroutines at once, %s; %d answered 429 and were retried after Retry-After; all sent in %s",
					workers, tc.name, refused, pressTime.Round(10*time.Millisecond)),
				Store: "sqlite", Sent: presses, Accepted: accepted, Lost: presses - len(alarms), DuplicateSMS: duplicates,
				Note: fmt.Sprintf("one incident, %v reports, one offer text per responder", inc["reports"]),
			})
		})
	}
}

// One token hammering the API is slowed down with 429 and Retry-After;
// another token from the same address is still served.
func TestAbuseRateLimitPerToken(t *testing.T) {
	h := start(t, "sqlite", withLimits(20, 200, 1, 5))
	h.community("c1")
	noisy, calm := h.token("dispatcher", "c1", ""), h.token("resident", "c1", "res-1")
	header := map[string]string{"Authorization": "Bearer " + noisy}

	served, limited := 0, 0
	for range 20 {
		resp, raw := h.request("GET", "/v1/incidents", header, nil)
		switch resp.StatusCode {
		case 200:
			served++
		case 429:
			limited++
			retryAfter(t, resp, raw)
		default:
			t.Fatalf("hammering token: status %d %s", resp.StatusCode, raw)
		}
	}
	if limited == 0 || served > 8 {
		t.Fatalf("a token allowed 1/s with a burst of 5 was served %d of 20 at once (%d refused)", served, limited)
	}
	// Same address, another token: its own budget.
	for range 3 {
		h.must(200, "GET", "/v1/incidents", calm, nil)
	}
	// Health, readiness and metrics answer whatever the limits.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, raw := h.request("GET", p, header, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s with an exhausted token: %d %s", p, resp.StatusCode, raw)
		}
	}
}

// Anonymous requests from one address beyond its limit get 429; probes,
// Twilio's signed webhooks and signed-in callers on the same address still
// get through, and a forged X-Forwarded-For does not buy a new budget.
func TestAbuseRateLimitPerIP(t *testing.T) {
	h := start(t, "sqlite", withLimits(1, 5, 10, 100))
	h.community("c1")
	h.responder("c1", person{"r1", "+8613800000701", []string{"medic"}, 100, true, true})
	resident := h.token("resident", "c1", "res-1")
	h.must(200, "GET", "/v1/taxonomy", resident, nil) // the token is known now

	limited := 0
	for i := range 15 {
		// Each try claims another client: without --trusted-proxies the
		// header is not believed.
		resp, raw := h.request("GET", "/v1/openapi.yaml", map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i+1)}, nil)
		switch resp.StatusCode {
		case 200:
		case 429:
			limited++
			retryAfter(t, resp, raw)
		default:
			t.Fatalf("anonymous request: %d %s", resp.StatusCode, raw)
		}
	}
	if limited < 8 {
		t.Fatalf("only %d of 15 anonymous requests from one address refused (limit 1/s, burst 5)", limited)
	}
	// Unknown tokens are anonymous: guessing spends the address's budget.
	if resp, raw := h.request("GET", "/v1/taxonomy", map[string]string{"Authorization": "Bearer sw_guess"}, nil); resp.StatusCode != 429 {
		t.Fatalf("a guessed token from a limited address: %d %s, want 429", resp.StatusCode, raw)
	}
	// What must keep working does.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, raw := h.request("GET", p, nil, nil); resp.StatusCode != 200 {
			t.Errorf("GET %s from a limited address: %d %s", p, resp.StatusCode, raw)
		}
	}
	h.must(200, "GET", "/v1/taxonomy", resident, nil)
	h.must(202, "POST", "/v1/alarms", resident, map[string]any{"key": "from-a-limited-address", "type": "medical", "location": centre})
	h.waitTexts("+8613800000701", 1, "回复 1 接受")
	if st := h.reply("+8613800000701", "1"); st != 200 {
		t.Fatalf("Twilio's signed reply from a limited address: %d, want 200", st)
	}
}

// Behind a trusted reverse proxy each client named in X-Forwarded-For has
// its own budget; entries a client wrote itself (left of what the proxy
// appended) do not count.
func TestAbuseRateLimitBehindProxy(t *testing.T) {
	h := start(t, "sqlite", func(c *Config) {
		withLimits(1, 3, 10, 100)(c)
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	statuses := func(xff string, n int) (ok, limited int) {
		for range n {
			resp, _ := h.request("GET", "/v1/openapi.yaml", map[string]string{"X-Forwarded-For": xff}, nil)
			switch resp.StatusCode {
			case 200:
				ok++
			case 429:
				limited++
			}
		}
		return ok, limited
	}
	if _, limited := statuses("198.51.100.7", 8); limited == 0 {
		t.Fatalf("client 198.51.100.7 behind the proxy was never limited")
	}
	if ok, _ := statuses("198.51.100.8", 2); ok != 2 {
		t.Fatalf("another client behind the same proxy was refused: %d of 2 served", ok)
	}
	// The client forges an address in front of its real one: still its own budget.
	if ok, _ := statuses("192.0.2.1, 198.51.100.7", 3); ok > 1 {
		t.Fatalf("a forged X-Forwarded-For entry gave a limited client %d fresh requests", ok)
	}
}

// The limits and the trusted proxies are read from flags, and a typo in a
// proxy address stops the service instead of trusting the wrong machine.
func TestAbuseConfig(t *testing.T) {
	c, err := parseConfig("serve", []string{"--api-rate-ip", "0", "--api-rate-token", "2.5", "--api-rate-token-burst", "7",
		"--trusted-proxies", "10.0.0.0/8, 192.168.1.1,::1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32"), netip.MustParsePrefix("::1/128")}
	if c.APIRateIP != 0 || c.APIRateToken != 2.5 || c.APIRateTokenBurst != 7 || fmt.Sprint(c.TrustedProxies) != fmt.Sprint(want) {
		t.Fatalf("parsed %v %v %v %v", c.APIRateIP, c.APIRateToken, c.APIRateTokenBurst, c.TrustedProxies)
	}
	for _, bad := range [][]string{{"--trusted-proxies", "10.0.0/8"}, {"--trusted-proxies", "proxy.local"}, {"--api-rate-ip", "-1"}, {"--api-rate-token-burst", "0"}} {
		if _, err := parseConfig("serve", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// politeTransport sends a request again after Retry-After when it is
// refused with 429, as a well-behaved client does; for test setup under
// tight limits.
type politeTransport struct{}

func (politeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			return resp, err
		}
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		resp.Body.Close()
		time.Sleep(time.Duration(max(secs, 1)) * time.Second)
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}
