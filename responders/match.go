package responders

import (
	"sort"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
)

// Candidate is a responder who could be asked, and how far away they are.
type Candidate struct {
	Responder Responder
	DistanceM float64
}

// Rank picks up to limit responders to ask: qualified now for one of the
// skills, available (and within their availability windows at now), not busy with another incident, not asked before
// (exclude), within radiusM of at; nearest first. Equal distances prefer
// professionals, then the lower id, so the choice is deterministic.
func Rank(tax *events.Taxonomy, rs []Responder, skills []string, at geo.Point, radiusM float64,
	now time.Time, exclude map[string]bool, limit int) []Candidate {
	var out []Candidate
	for _, r := range rs {
		if !r.Available || r.BusyIncident != "" || exclude[r.ID] || !r.Availability.At(now) {
			continue
		}
		qualified := false
		for _, s := range skills {
			if r.Qualified(tax, s, now) {
				qualified = true
				break
			}
		}
		if !qualified {
			continue
		}
		d := geo.DistanceM(at, r.Location)
		if d > radiusM {
			continue
		}
		out = append(out, Candidate{Responder: r, DistanceM: d})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.DistanceM != b.DistanceM {
			return a.DistanceM < b.DistanceM
		}
		if (a.Responder.Kind == KindProfessional) != (b.Responder.Kind == KindProfessional) {
			return a.Responder.Kind == KindProfessional
		}
		return a.Responder.ID < b.Responder.ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}
