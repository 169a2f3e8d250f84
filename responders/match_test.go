package responders

import (
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
)

func TestRank(t *testing.T) {
	tax := events.DefaultTaxonomy()
	now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
	centre := geo.Point{Lat: 31.2304, Lng: 121.4737}
	valid := []Certificate{{Skill: "medic", ExpiresAt: now.AddDate(1, 0, 0)}}
	expired := []Certificate{{Skill: "medic", ExpiresAt: now.AddDate(0, 0, -1)}}
	medic := func(id string, north float64, mod func(*Responder)) Responder {
		r := Responder{ID: id, Skills: []string{"medic"}, Certificates: valid, Available: true,
			Kind: KindVolunteer, Location: geo.Offset(centre, north, 0)}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	rs := []Responder{
		medic("far", 450, nil),
		medic("near", 50, nil),
		medic("mid", 200, nil),
		medic("expired-cert", 10, func(r *Responder) { r.Certificates = expired }),
		medic("no-cert", 11, func(r *Responder) { r.Certificates = nil }),
		medic("unavailable", 12, func(r *Responder) { r.Available = false }),
		medic("busy", 13, func(r *Responder) { r.BusyIncident = "in_other" }),
		medic("asked-before", 14, nil),
		medic("outside", 900, nil),
		{ID: "plumber", Skills: []string{"electrician"}, Available: true, Location: centre},
		{ID: "general", Skills: []string{"general"}, Available: true, Location: centre},
	}
	got := Rank(tax, rs, []string{"medic"}, centre, 500, now, map[string]bool{"asked-before": true}, 3)
	want := []string{"near", "mid", "far"}
	if len(got) != len(want) {
		t.Fatalf("got %d candidates %v, want %v", len(got), ids(got), want)
	}
	for i := range want {
		if got[i].Responder.ID != want[i] {
			t.Fatalf("order %v, want %v", ids(got), want)
		}
	}
	if d := got[0].DistanceM; d < 45 || d > 55 {
		t.Fatalf("distance of nearest = %.1f, want ~50", d)
	}
	// Uncertified skills need no certificate: "other" accepts general volunteers.
	if got := Rank(tax, rs, []string{"general"}, centre, 500, now, nil, 3); len(got) != 1 || got[0].Responder.ID != "general" {
		t.Fatalf("general volunteers: %v", ids(got))
	}
	// Equal distance: professionals first.
	tie := []Responder{medic("b-vol", 100, nil), medic("a-vol", 100, nil), medic("z-pro", 100, func(r *Responder) { r.Kind = KindProfessional })}
	if got := ids(Rank(tax, tie, []string{"medic"}, centre, 500, now, nil, 3)); got[0] != "z-pro" || got[1] != "a-vol" {
		t.Fatalf("tie order %v", got)
	}
}

func ids(cs []Candidate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Responder.ID
	}
	return out
}
