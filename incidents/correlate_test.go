package incidents

import (
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
)

func TestCorrelate(t *testing.T) {
	now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
	centre := geo.Point{Lat: 31.2304, Lng: 121.4737}
	fire, _ := events.DefaultTaxonomy().Type("fire") // 150 m, 30 min
	open := func(id string, north float64, lastReport time.Duration, st Status) Incident {
		return Incident{ID: id, Community: "c1", Type: "fire", Status: st,
			Location: geo.Offset(centre, north, 0), LastReportAt: now.Add(-lastReport)}
	}
	alarm := Alarm{Community: "c1", Type: "fire", ReceivedAt: now}

	for _, tc := range []struct {
		name string
		open []Incident
		want string
	}{
		{"nothing open opens a new incident", nil, ""},
		{"near and recent joins", []Incident{open("a", 100, 10*time.Minute, StatusOpen)}, "a"},
		{"too far opens", []Incident{open("a", 200, time.Minute, StatusOpen)}, ""},
		{"too old opens", []Incident{open("a", 10, 31*time.Minute, StatusOpen)}, ""},
		{"resolved does not attract", []Incident{open("a", 10, time.Minute, StatusResolved)}, ""},
		{"escalated still attracts", []Incident{open("a", 10, time.Minute, StatusEscalated)}, "a"},
		{"nearest wins", []Incident{open("far", 120, time.Minute, StatusOpen), open("near", 20, time.Minute, StatusResponding)}, "near"},
		{"other community never", []Incident{{ID: "x", Community: "c2", Type: "fire", Status: StatusOpen, Location: centre, LastReportAt: now}}, ""},
		{"other type never", []Incident{{ID: "x", Community: "c1", Type: "flood", Status: StatusOpen, Location: centre, LastReportAt: now}}, ""},
		{"a drill never swallows a real alarm", []Incident{{ID: "x", Community: "c1", Type: "fire", Status: StatusOpen, Location: centre, LastReportAt: now, Drill: true}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := Correlate(alarm, centre, tc.open, fire.Correlation)
			got := ""
			if i >= 0 {
				got = tc.open[i].ID
			}
			if got != tc.want {
				t.Fatalf("joined %q, want %q", got, tc.want)
			}
		})
	}
}
