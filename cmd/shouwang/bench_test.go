package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shouwang/shouwang/storage/storagetest"
)

// BenchmarkAlarmToOfferSMS runs the shouwang bench harness for b.N alarms
// at 100 a second on both stores with a small registry, and reports the
// 202 and the alarm → first offer text latencies. shouwang bench is the
// full load test (docs/performance.md); this keeps it in reach of go test:
//
//	go test -run '^$' -bench AlarmToOfferSMS -benchtime 300x ./cmd/shouwang/
func BenchmarkAlarmToOfferSMS(b *testing.B) {
	for _, store := range stores {
		b.Run(store, func(b *testing.B) {
			o := defaultBenchOptions()
			o.Responders, o.Rates, o.Alarms, o.Workers, o.DataDir = 5000, []float64{100}, b.N, 32, b.TempDir()
			if store == "postgres" {
				o.DatabaseURL = storagetest.PostgresURL(b)
			}
			b.ResetTimer()
			rep, err := runBench(context.Background(), o, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			run := rep.Alarms[0]
			if run.ToSMS.N < run.Sent*9/10 {
				b.Fatalf("only %d of %d alarms got an offer text", run.ToSMS.N, run.Sent)
			}
			b.ReportMetric(run.Accept.P50, "accept-p50-ms")
			b.ReportMetric(run.Accept.P99, "accept-p99-ms")
			b.ReportMetric(run.ToSMS.P50, "sms-p50-ms")
			b.ReportMetric(run.ToSMS.P99, "sms-p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// A resident's press reaches a responder's phone under load, and the
// numbers an operator reads in docs/performance.md come out of shouwang
// bench complete: a tiny run of every scenario must give an offer text for
// every alarm, one incident for the storm and every masscall volunteer
// texted, with the JSON fields the doc's table is made from.
func TestBenchCommandReportsEveryScenario(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "latency.png")
	var out, errOut bytes.Buffer
	start := time.Now()
	err := benchCmd(context.Background(), []string{"--responders", "200", "--rates", "10,20", "--duration", "1s",
		"--scenario", "all", "--masscall", "20", "--twilio-rps", "50", "--storm-presses", "100", "--storm-window", "1s",
		"--workers", "8", "--settle", "0s", "--json", "--plot", plot}, &out, &errOut)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errOut.String())
	}
	t.Logf("bench took %s\n%s", time.Since(start), errOut.String())
	var rep BenchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("bench --json printed no report: %v\n%s", err, out.String())
	}
	if rep.Store != "sqlite" || rep.Responders != 200 || rep.PeakRSSMB <= 0 || rep.RSSAfterStartMB <= 0 {
		t.Errorf("report header %+v", rep)
	}
	if len(rep.Alarms) != 2 {
		t.Fatalf("want a run for each of 2 rates, got %d", len(rep.Alarms))
	}
	for _, a := range rep.Alarms {
		if a.Sent != int(a.OfferedRate) || a.Accepted != a.Sent || a.Errors != 0 {
			t.Errorf("at %g/s: sent %d, accepted %d, errors %d", a.OfferedRate, a.Sent, a.Accepted, a.Errors)
		}
		// Every alarm's first offer reached the fake Twilio (a reference
		// shared by two alarms is left out, not counted as missing).
		if a.NoText != 0 || a.ToSMS.N+a.Ambiguous != a.Accepted || a.Queued.N == 0 {
			t.Errorf("at %g/s: %d alarms got no offer text; timed %d to Twilio, %d to the outbox", a.OfferedRate, a.NoText, a.ToSMS.N, a.Queued.N)
		}
		if !(a.Accept.P50 > 0 && a.Accept.P50 <= a.Accept.P99 && a.Accept.P99 <= a.Accept.Max) {
			t.Errorf("at %g/s: accept percentiles out of order: %+v", a.OfferedRate, a.Accept)
		}
		// The text leaves after it was queued, and both after the 202 was due.
		if a.ToSMS.P50 < a.Queued.P50-1 || a.Queued.P50 <= 0 {
			t.Errorf("at %g/s: queued p50 %.2f ms, at Twilio p50 %.2f ms", a.OfferedRate, a.Queued.P50, a.ToSMS.P50)
		}
	}
	if m := rep.MassCall; m == nil || m.Reached != 20 || m.AllMs <= 0 || m.TwilioRPS != 50 || m.SMSRate != 50 {
		t.Errorf("masscall: %+v", rep.MassCall)
	}
	if s := rep.Storm; s == nil || s.Accepted != 100 || s.Incidents != 1 || s.Reports != 100 || !s.CaughtUp {
		t.Errorf("storm: %+v", rep.Storm)
	}
	if fi, err := os.Stat(plot); err != nil || fi.Size() < 1000 {
		t.Errorf("plot not written: %v", err)
	}
}
