package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
)

// BenchmarkAlarmToOfferSMS measures, per alarm, the time to the 202 and the
// time from the POST to the first offer text arriving at the fake Twilio
// (through the real twilio-go client), on both stores. Each iteration is a
// medical alarm at its own spot, so each opens its own incident. Run:
//
//	go test -run '^$' -bench AlarmToOfferSMS -benchtime 300x ./cmd/shouwang/
func BenchmarkAlarmToOfferSMS(b *testing.B) {
	for _, store := range stores {
		b.Run(store, func(b *testing.B) { benchAlarmToSMS(b, store) })
	}
}

func benchAlarmToSMS(b *testing.B, store string) {
	// 300 incidents a few hundred metres apart within seconds ask each medic
	// many times a minute; the per-recipient carrier limit would hold those
	// texts back (by design) and this measures the pipeline, not the limit.
	h := start(b, store, func(c *Config) { c.SMSPerRecipient = 0 })
	h.community("c1")
	// A grid of medics every 200 m over 4 km × 4 km.
	n := 0
	for i := -10; i <= 10; i++ {
		for j := -10; j <= 10; j++ {
			n++
			p := geo.Offset(centre, float64(i)*200, float64(j)*200)
			h.must(201, "POST", "/v1/communities/c1/responders", testAdminToken, map[string]any{
				"name": fmt.Sprintf("医生%d", n), "phone": fmt.Sprintf("+86137%08d", n), "skills": []string{"medic"},
				"certificates": []map[string]any{{"skill": "medic", "expires_at": time.Now().AddDate(1, 0, 0)}},
				"location":     p, "available": true,
			})
		}
	}
	resident := h.token("resident", "c1", "bench")
	type sample struct {
		start    time.Time
		accepted time.Duration
		ref      string
	}
	samples := make([]sample, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		// Spots 100 m apart: further than medical's 30 m correlation radius.
		where := geo.Offset(centre, float64(i%40)*100-2000, float64(i/40)*100-2000)
		t0 := time.Now()
		id := h.press(resident, fmt.Sprintf("bench-%d", i), "medical", where)
		samples = append(samples, sample{start: t0, accepted: time.Since(t0), ref: "[" + responders.Ref("in_"+id[3:]) + "]"})
		time.Sleep(10 * time.Millisecond) // about 100 alarms/s, so we measure latency, not a backlog
	}
	// Wait for every alarm's first offer text.
	deadline := time.Now().Add(60 * time.Second)
	first := map[string]time.Time{}
	refs := map[string]int{}
	for _, s := range samples {
		refs[s.ref]++
	}
	for time.Now().Before(deadline) {
		for _, m := range h.twilio.Messages() {
			for ref := range refs {
				if strings.Contains(m.Body, ref) && (first[ref].IsZero() || m.At.Before(first[ref])) {
					first[ref] = m.At
				}
			}
		}
		if len(first) == len(refs) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()
	var accept, toSMS []float64
	for _, s := range samples {
		accept = append(accept, ms(s.accepted))
		if refs[s.ref] == 1 && !first[s.ref].IsZero() { // a shared ref would be ambiguous
			toSMS = append(toSMS, ms(first[s.ref].Sub(s.start)))
		}
	}
	if len(toSMS) < len(samples)*9/10 {
		b.Fatalf("only %d of %d alarms got an offer text", len(toSMS), len(samples))
	}
	b.ReportMetric(pct(accept, 50), "accept-p50-ms")
	b.ReportMetric(pct(accept, 99), "accept-p99-ms")
	b.ReportMetric(pct(toSMS, 50), "sms-p50-ms")
	b.ReportMetric(pct(toSMS, 99), "sms-p99-ms")
	b.ReportMetric(0, "ns/op")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
