package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/sms/twiliofake"
)

// scraped is one scrape of /metrics, parsed.
type scraped map[string]*dto.MetricFamily

// scrape reads /metrics over HTTP, without a token, as Prometheus does.
func (h *harness) scrape() scraped {
	h.t.Helper()
	resp, err := h.http.Get(h.base + "/metrics")
	if err != nil {
		h.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		h.t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return fams
}

// find returns the series of family name whose labels include all of want.
func (s scraped) find(name string, want map[string]string) (*dto.Metric, bool) {
	fam, ok := s[name]
	if !ok {
		return nil, false
	}
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if have[k] != v {
				match = false
				break
			}
		}
		if match {
			return m, true
		}
	}
	return nil, false
}

// value is a counter's or gauge's value, or -1 when the series is absent.
func (s scraped) value(name string, labels map[string]string) float64 {
	m, ok := s.find(name, labels)
	switch {
	case !ok:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	default:
		return m.GetUntyped().GetValue()
	}
}

// histogram returns a histogram's count and sum.
func (s scraped) histogram(name string) (uint64, float64) {
	m, ok := s.find(name, nil)
	if !ok || m.Histogram == nil {
		return 0, 0
	}
	return m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()
}

// durables lists every durable consumer JetStream has on the service's
// streams, asked of JetStream itself rather than of the service.
func (h *harness) durables() map[string]string {
	h.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, stream := range []string{events.StreamAlarms, events.StreamIncidents, events.StreamSMS, events.StreamTimers} {
		s, err := h.svc.Bus.JetStream().Stream(ctx, stream)
		if err != nil {
			h.t.Fatalf("stream %s: %v", stream, err)
		}
		names := s.ConsumerNames(ctx)
		for n := range names.Name() {
			out[n] = stream
		}
		if err := names.Err(); err != nil {
			h.t.Fatalf("consumers of %s: %v", stream, err)
		}
	}
	return out
}

// A medical alarm, one medic: the operator's dashboard shows the press,
// how long the medic waited for the text, the offer and the acceptance,
// the delivery receipt, a poison message parked, and every consumer caught
// up once the work is done.
func TestMetricsFollowAnAlarmToAnAcceptedOffer(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		medic := "+8613800000701"
		h.responder("c1", person{"m1", medic, []string{"medic"}, 100, true, true})
		resident := h.token("resident", "c1", "res-1")

		// Refused presses are counted by why they were refused.
		body := map[string]any{"key": "x", "type": "medical", "location": centre}
		if st, _ := h.call("POST", "/v1/alarms", "", body); st != http.StatusUnauthorized {
			t.Fatalf("press without a token: %d, want 401", st)
		}
		if st, _ := h.call("POST", "/v1/alarms", resident, map[string]any{"key": "y", "type": "volcano", "location": centre}); st != http.StatusUnprocessableEntity {
			t.Fatalf("press of an unknown type: %d, want 422", st)
		}

		pressed := time.Now()
		incident := h.incidentOf(resident, h.press(resident, "k1", "medical", centre))
		h.waitTexts(medic, 1, "回复 1 接受")
		var m scraped
		eventually(t, 10*time.Second, func() bool {
			m = h.scrape()
			n, _ := m.histogram("shouwang_alarm_to_offer_sms_seconds")
			return n >= 1
		}, says("the offer text was never timed"))
		elapsed := time.Since(pressed).Seconds()

		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"shouwang_alarms_received_total", map[string]string{"type": "medical", "result": "accepted"}, 1},
			{"shouwang_alarms_received_total", map[string]string{"type": "unknown", "result": "denied"}, 1},
			{"shouwang_alarms_received_total", map[string]string{"type": "unknown", "result": "invalid"}, 1},
			{"shouwang_alarms_processed_total", map[string]string{"type": "medical", "outcome": "opened"}, 1},
			{"shouwang_offers_total", map[string]string{"outcome": "offered"}, 1},
			{"shouwang_offers_total", map[string]string{"outcome": "accepted"}, 0},
		} {
			if got := m.value(c.name, c.labels); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		if got := m.value("shouwang_sms_total", map[string]string{"channel": "sms", "status": "sent"}); got < 1 {
			t.Errorf("sms sent = %v, want at least the offer", got)
		}
		n, sum := m.histogram("shouwang_alarm_to_offer_sms_seconds")
		if n != 1 || sum <= 0 || sum > elapsed {
			t.Errorf("alarm to offer SMS: %d observations summing %.3fs; want one incident, timed within the %.3fs the test waited", n, sum, elapsed)
		}
		if got := count(timelineKinds(h.incident(testAdminToken, incident)), "first_offer_sent"); got != 1 {
			t.Errorf("timeline has %d first_offer_sent, want 1", got)
		}

		// The medic says yes; Twilio reports the offer delivered.
		if st := h.reply(medic, "1"); st != 200 {
			t.Fatalf("reply: %d", st)
		}
		h.waitTexts(medic, 1, "已确认由您前往")
		offer := h.twilio.MessagesTo(medic)[0]
		form := url.Values{"MessageSid": {offer.SID}, "MessageStatus": {"delivered"}, "AccountSid": {twiliofake.AccountSID}}
		if st := h.webhook("/v1/webhooks/twilio/status", form, twiliofake.Sign(twiliofake.AuthToken, testPublicURL+"/v1/webhooks/twilio/status", form)); st != 204 {
			t.Fatalf("status webhook: %d", st)
		}

		// A message nobody can read is parked as a dead letter.
		if _, err := h.svc.Bus.JetStream().Publish(context.Background(), events.AlarmSubject("c1", "medical"), []byte("not an event")); err != nil {
			t.Fatalf("publish poison: %v", err)
		}

		eventually(t, 10*time.Second, func() bool {
			m = h.scrape()
			return m.value("shouwang_offers_total", map[string]string{"outcome": "accepted"}) == 1 &&
				m.value("shouwang_sms_total", map[string]string{"channel": "sms", "status": "delivered"}) == 1 &&
				m.value("shouwang_dead_letters_total", map[string]string{"durable": "intake"}) == 1
		}, func() string {
			return fmt.Sprintf("offers accepted %v, sms delivered %v, dead letters of intake %v; want 1 each",
				m.value("shouwang_offers_total", map[string]string{"outcome": "accepted"}),
				m.value("shouwang_sms_total", map[string]string{"channel": "sms", "status": "delivered"}),
				m.value("shouwang_dead_letters_total", map[string]string{"durable": "intake"}))
		})
		if got := m.value("shouwang_dead_letter_messages", map[string]string{"durable": "intake"}); got != 1 {
			t.Errorf("dead letters kept for intake = %v, want 1", got)
		}
		if got := m.value("shouwang_offers_total", map[string]string{"outcome": "offered"}); got != 1 {
			t.Errorf("offers offered = %v after the acceptance, want still 1", got)
		}

		// Once the work is done every consumer is caught up. Timer
		// consumers keep the timers not yet due as unacknowledged.
		durables := h.durables()
		if len(durables) == 0 {
			t.Fatal("JetStream lists no durable consumers")
		}
		var behind []string
		eventually(t, 15*time.Second, func() bool {
			m = h.scrape()
			behind = nil
			for durable, stream := range durables {
				labels := map[string]string{"stream": stream, "durable": durable}
				pending := m.value("shouwang_consumer_pending_messages", labels)
				acks := m.value("shouwang_consumer_ack_pending_messages", labels)
				if pending != 0 || acks < 0 || (stream != events.StreamTimers && acks != 0) {
					behind = append(behind, fmt.Sprintf("%s/%s pending %v ack pending %v", stream, durable, pending, acks))
				}
			}
			return len(behind) == 0
		}, func() string {
			sort.Strings(behind)
			return "consumers not caught up (-1: no gauge): " + strings.Join(behind, "; ")
		})
	})
}

// startWithLogger is start with the service logging through log.
func startWithLogger(t *testing.T, store string, log *slog.Logger) *harness {
	t.Helper()
	cfg := testConfig(t, store)
	cfg.LogFormat = "json"
	fake := twiliofake.New(t)
	cfg.TwilioHTTPClient = fake.Client()
	return startWith(t, cfg, fake, log)
}

// With --log-format json every line is a JSON object; the lines a
// dispatcher follows an incident by name it as "incident", and no line
// carries a phone number in full, not even the one Twilio refused and
// quoted back in its error.
func TestJSONLogsNameTheIncidentAndMaskPhones(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		var logs lockedBuffer
		h := startWithLogger(t, store, newLogger(&logs, "json"))
		h.community("c1")
		medic, refused := "+8613800000711", "+8613800000712"
		h.responder("c1", person{"m1", medic, []string{"medic"}, 100, true, true})
		h.responder("c1", person{"m2", refused, []string{"medic"}, 200, true, true})
		h.twilio.FailTo(refused, 21211)
		resident := h.token("resident", "c1", "res-1")
		dispatcher := h.token("dispatcher", "c1", "")

		incident := h.incidentOf(resident, h.press(resident, "k", "medical", centre))
		h.waitTexts(medic, 1, "回复 1 接受")
		eventually(t, 10*time.Second, func() bool {
			return offersByResponder(h.incident(testAdminToken, incident))["m2"] == "failed"
		}, says("the refused text never failed its offer"))
		if st := h.reply(medic, "1"); st != 200 {
			t.Fatalf("reply: %d", st)
		}
		h.waitTexts(medic, 1, "已确认由您前往")
		h.must(200, "POST", "/v1/incidents/"+incident+"/resolve", dispatcher, nil)
		h.waitTexts(medic, 1, "已处置完毕")

		// Each of these is about the incident and must name it.
		about := []string{"alarm correlated", "plan activated", "wave offered", "text queued", "sent",
			"refused by provider", "offer text failed; offer moves on", "offer answered"}
		seen := map[string]int{}
		eventually(t, 10*time.Second, func() bool {
			clear(seen)
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil {
					seen[fmt.Sprint(rec["msg"])]++
				}
			}
			for _, msg := range about {
				if seen[msg] == 0 {
					return false
				}
			}
			return seen["sent"] >= 3 // offer, confirmation, resolved
		}, func() string { return fmt.Sprintf("log lines so far %v; want each of %q", seen, about) })

		text := logs.String()
		for i, line := range strings.Split(strings.TrimSpace(text), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("log line %d is not JSON: %v: %s", i+1, err, line)
				continue
			}
			for _, msg := range about {
				if rec["msg"] == msg && rec["incident"] != incident {
					t.Errorf("log line %q has incident %v, want %s: %s", msg, rec["incident"], incident, line)
				}
			}
		}
		for _, phone := range []string{medic, refused, centerPhone} {
			if strings.Contains(text, phone) || strings.Contains(text, strings.TrimPrefix(phone, "+")) {
				t.Errorf("log has the full number %s:\n%s", phone, text)
			}
		}
		for _, phone := range []string{medic, refused} {
			if !strings.Contains(text, sms.Mask(phone)) {
				t.Errorf("log never names %s in its masked form %s", phone, sms.Mask(phone))
			}
		}
	})
}
