package responders

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
)

// randomRegistry is a seeded generator of responders spread over a city,
// with every fact matching looks at varied, and some people sharing a spot
// (ties in distance).
type randomRegistry struct {
	rnd    *rand.Rand
	tax    *events.Taxonomy
	skills []string
	now    time.Time
	centre geo.Point
	next   int
}

func newRandomRegistry(seed uint64) *randomRegistry {
	tax := events.DefaultTaxonomy()
	return &randomRegistry{rnd: rand.New(rand.NewPCG(seed, 1)), tax: tax, skills: tax.SkillNames(),
		now: time.Date(2026, 11, 22, 20, 0, 0, 0, Zone), centre: geo.Point{Lat: 31.2304, Lng: 121.4737}}
}

// point is somewhere within spreadM of the centre; one in ten share one
// of a few spots.
func (g *randomRegistry) point(spreadM float64) geo.Point {
	if g.rnd.IntN(10) == 0 {
		return geo.Offset(g.centre, float64(g.rnd.IntN(3))*100, 0)
	}
	return geo.Offset(g.centre, (g.rnd.Float64()*2-1)*spreadM, (g.rnd.Float64()*2-1)*spreadM)
}

func (g *randomRegistry) responder(community string) Responder {
	g.next++
	r := Responder{ID: fmt.Sprintf("rs%06d", g.next), Community: community, Location: g.point(5000),
		Available: g.rnd.IntN(10) > 0, Kind: KindVolunteer}
	g.refill(&r)
	return r
}

// refill draws new skills, certificates, windows, team and kind.
func (g *randomRegistry) refill(r *Responder) {
	r.Skills, r.Certificates, r.Availability, r.Team = nil, nil, nil, ""
	for range 1 + g.rnd.IntN(3) {
		r.Skills = append(r.Skills, g.skills[g.rnd.IntN(len(g.skills))])
	}
	for _, s := range r.Skills {
		if g.rnd.IntN(4) > 0 { // some have no certificate at all
			r.Certificates = append(r.Certificates, Certificate{Skill: s, ExpiresAt: g.now.Add(time.Duration(g.rnd.IntN(60)-20) * 24 * time.Hour)})
		}
	}
	if g.rnd.IntN(3) == 0 {
		start := g.rnd.IntN(24)
		r.Availability = Availability{{Days: []int{1 + g.rnd.IntN(7), 1 + g.rnd.IntN(7)}, Start: fmt.Sprintf("%02d:00", start),
			End: fmt.Sprintf("%02d:30", (start+1+g.rnd.IntN(12))%24)}}
		if r.Availability[0].Days[0] == r.Availability[0].Days[1] {
			r.Availability[0].Days = r.Availability[0].Days[:1]
		}
	}
	if g.rnd.IntN(2) == 0 {
		r.Team = fmt.Sprintf("team%d", g.rnd.IntN(4))
	}
	if g.rnd.IntN(5) == 0 {
		r.Kind = KindProfessional
	}
}

func (g *randomRegistry) query(ids []string) Query {
	q := Query{Community: []string{"a", "b"}[g.rnd.IntN(2)], At: g.point(6000), RadiusM: 200 + g.rnd.Float64()*4000,
		Now: g.now.Add(time.Duration(g.rnd.IntN(14*24*60)) * time.Minute), Limit: 1 + g.rnd.IntN(10)}
	for range 1 + g.rnd.IntN(2) {
		q.Skills = append(q.Skills, g.skills[g.rnd.IntN(len(g.skills))])
	}
	if g.rnd.IntN(3) == 0 {
		q.Exclude = map[string]bool{}
		for range 20 {
			q.Exclude[ids[g.rnd.IntN(len(ids))]] = true
		}
	}
	if g.rnd.IntN(4) == 0 {
		q.Scope = &Scope{Teams: []string{"team1"}, Responders: []string{ids[g.rnd.IntN(len(ids))]}}
	}
	return q
}

// bruteForce is what the index must answer: Rank over the whole community.
func bruteForce(tax *events.Taxonomy, all map[string]Responder, q Query) []Candidate {
	var rs []Responder
	for _, r := range all {
		if r.Community == q.Community {
			rs = append(rs, r)
		}
	}
	return Rank(tax, q.Scope.Filter(rs), q.Skills, q.At, q.RadiusM, q.Now, q.Exclude, q.Limit)
}

func TestIndexAnswersAsABruteForceScan(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			g := newRandomRegistry(seed)
			x, err := NewIndex(g.tax)
			if err != nil {
				t.Fatal(err)
			}
			all := map[string]Responder{}
			var ids []string
			for i := range 3000 {
				r := g.responder([]string{"a", "b"}[i%2])
				all[r.ID] = r
				ids = append(ids, r.ID)
			}
			x.replaceAll(slices.Collect(maps.Values(all)))

			check := func(stage string) {
				t.Helper()
				for range 300 {
					q := g.query(ids)
					want := bruteForce(g.tax, all, q)
					got, ok := x.Nearest(q, nil)
					if !ok {
						t.Fatal("loaded index says it is not loaded")
					}
					if !sameAnswer(got, want) {
						t.Fatalf("%s: query %+v:\n index %v\n scan  %v", stage, q, got, want)
					}
				}
			}
			check("loaded")

			// Writes as the registry makes them: people move, retrain, go
			// off call and come back, new ones register, some disappear.
			var changed []Responder
			var gone []string
			for _, id := range ids {
				r := all[id]
				switch g.rnd.IntN(10) {
				case 0:
					r.Location = g.point(5000)
				case 1:
					g.refill(&r)
				case 2:
					r.Available = !r.Available
				case 3:
					delete(all, id)
					gone = append(gone, id)
					continue
				default:
					continue
				}
				all[id] = r
				changed = append(changed, r)
			}
			for i := range 500 {
				r := g.responder([]string{"a", "b"}[i%2])
				all[r.ID], ids = r, append(ids, r.ID)
				changed = append(changed, r)
			}
			x.Apply(changed, gone)
			check("after updates and removals")

			// A whole community reloaded (a roster import elsewhere).
			var b []Responder
			for _, r := range all {
				if r.Community == "b" {
					r.Location = g.point(5000)
					all[r.ID] = r
					b = append(b, r)
				}
			}
			x.replaceCommunity("b", b)
			check("after a community reload")

			available := 0
			for _, r := range all {
				if r.Available {
					available++
				}
			}
			if x.Len() != available {
				t.Fatalf("index holds %d responders, %d are taking calls", x.Len(), available)
			}
		})
	}
}

func sameAnswer(got []Hit, want []Candidate) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].ID != want[i].Responder.ID || got[i].DistanceM != want[i].DistanceM {
			return false
		}
	}
	return true
}

// TestBoxLowerBound checks the bound the nearest-first walk relies on: no
// point of a box is nearer than it, anywhere on the globe.
func TestBoxLowerBound(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	for range 200000 {
		lat, lng := rnd.Float64()*170-85, rnd.Float64()*360-180
		size := []float64{0.001, 0.1, 5, 60}[rnd.IntN(4)]
		minLat, minLng := rnd.Float64()*170-85, rnd.Float64()*360-180
		maxLat, maxLng := min(minLat+rnd.Float64()*size, 89.9), min(minLng+rnd.Float64()*size, 180)
		p := geo.Point{Lat: minLat + rnd.Float64()*(maxLat-minLat), Lng: minLng + rnd.Float64()*(maxLng-minLng)}
		h := boxLowerBound(lat, lng, math.Cos(rad(lat)), [2]float64{minLng, minLat}, [2]float64{maxLng, maxLat})
		bound := 2 * 6371008.8 * math.Asin(math.Min(1, math.Sqrt(h))) // in metres, as geo.DistanceM
		if d := geo.DistanceM(geo.Point{Lat: lat, Lng: lng}, p); bound > d {
			t.Fatalf("from %v,%v the box %v,%v–%v,%v is at least %.3f m away, yet %v is %.3f m away",
				lat, lng, minLat, minLng, maxLat, maxLng, bound, p, d)
		}
	}
}
