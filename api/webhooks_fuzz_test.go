package api_test

import (
	"encoding/json"
	"encoding/xml"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/shouwang/shouwang/api"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms/twiliofake"
)

// webhookURL is the public base URL Twilio calls, behind a proxy: the
// signature covers it, not the address the request arrives on.
const webhookURL = "https://shouwang.example.org"

// FuzzTwilioWebhooks throws arbitrary form bodies at the three Twilio
// webhooks, both unsigned (or signed wrongly) and correctly signed as
// Twilio would sign them. Unsigned is always 403; signed is never 403;
// and whatever arrives, the answer is never a 5xx or a panic: TwiML that
// parses, a 204, or a 4xx with the JSON error body.
func FuzzTwilioWebhooks(f *testing.F) {
	db, bus, tax, log := fuzzBackends(f)
	app := api.New(api.Deps{
		DB: db, Bus: bus, Tax: tax, Tokens: &api.Tokens{DB: db, Now: time.Now}, Log: log, Now: time.Now,
		Dispatcher:      &responders.Dispatcher{DB: db, Tax: tax, Relay: events.NewRelay(db, bus, log), Log: log, Now: time.Now},
		TwilioAuthToken: twiliofake.AuthToken, PublicURL: webhookURL,
	})

	for _, s := range []struct {
		route  uint8
		offer  string
		body   string
		signed bool
	}{
		{0, "", "MessageSid=SM1&From=%2B8613800000001&To=%2B8610690000000&Body=1", true},
		{0, "", "MessageSid=SM1&From=%2B8613800000001&To=%2B8610690000000&Body=1", false},
		{0, "", "MessageSid=SM2&From=%2B8613800000001&Body=%E7%81%AB", true},
		{0, "", "MessageSid=SM3&From=1%20OR%201%3D1&Body=%27%3B+DROP+TABLE+responders%3B--", true},
		{0, "", "MessageSid=&From=", true},
		{0, "", "Body=" + strings.Repeat("x", 1600), true},
		{0, "", "MessageSid=SM4&MessageSid=SM5&From=%2B86&From=%2B87", true},
		{0, "", "%zz=%&&=&a", true},
		{0, "", "MessageSid=SM%00%0A&From=%0D%0A", true},
		{1, "", "MessageSid=SM1&MessageStatus=delivered", true},
		{1, "", "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003", true},
		{1, "", "MessageSid=SM1&MessageStatus=%F0%9F%94%A5&ErrorCode=abc", true},
		{1, "", "MessageStatus=delivered", true},
		{2, "of_x", "Digits=1", true},
		{2, "of_x", "Digits=2", false},
		{2, "'; DROP TABLE offers;--", "Digits=1", true},
		{2, "", "Digits=1", true},
		{2, "of_x", "Digits=%EF%BC%91", true},
		{2, "of_x", "", true},
	} {
		f.Add(s.route, s.offer, []byte(s.body), s.signed)
	}

	paths := []string{"/v1/webhooks/twilio/sms", "/v1/webhooks/twilio/status", "/v1/webhooks/twilio/voice"}
	f.Fuzz(func(t *testing.T, route uint8, offer string, body []byte, signed bool) {
		hook := paths[int(route)%len(paths)]
		path := hook
		if offer != "" {
			path += "?offer=" + url.QueryEscape(offer)
		}
		req := httptest.NewRequest("POST", path, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if signed {
			req.Header.Set("X-Twilio-Signature", twiliofake.Sign(twiliofake.AuthToken, webhookURL+path, serverForm(body)))
		} else if len(body)%2 == 1 {
			// Signed by someone without our token.
			req.Header.Set("X-Twilio-Signature", twiliofake.Sign("not-our-token", webhookURL+path, serverForm(body)))
		}
		resp, raw := answer(t, app, req)
		status, ct := resp.StatusCode, resp.Header.Get("Content-Type")
		switch {
		case status >= 500:
			t.Fatalf("%s: status %d for %q: %s", path, status, body, raw)
		case !signed && status != 403:
			t.Fatalf("%s: unsigned request got %d, want 403: %s", path, status, raw)
		case signed && status == 403:
			t.Fatalf("%s: correctly signed request refused: %s", path, raw)
		case status >= 400:
			var out struct {
				Error *struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(raw, &out) != nil || out.Error == nil ||
				out.Error.Code == "" || out.Error.Message == "" {
				t.Fatalf("%s: status %d without the JSON error body (%s): %q", path, status, ct, raw)
			}
		case status == 204:
			if hook != "/v1/webhooks/twilio/status" {
				t.Fatalf("%s: 204 where Twilio waits for TwiML", path)
			}
		case status == 200:
			var twiml struct {
				XMLName xml.Name `xml:"Response"`
			}
			if !strings.HasPrefix(ct, "text/xml") || xml.Unmarshal(raw, &twiml) != nil {
				t.Fatalf("%s: 200 without TwiML (%s): %q", path, ct, raw)
			}
		default:
			t.Fatalf("%s: unexpected status %d: %s", path, status, raw)
		}
	})
}

// serverForm reads a form body the way the server does (fasthttp's
// parser; a key sent twice keeps its last value), so a signature made over
// it is one Twilio could have made.
func serverForm(body []byte) url.Values {
	var args fasthttp.Args
	args.ParseBytes(body)
	seen := map[string]string{}
	args.VisitAll(func(k, v []byte) { seen[string(k)] = string(v) })
	form := url.Values{}
	for k, v := range seen {
		form.Set(k, v)
	}
	return form
}
