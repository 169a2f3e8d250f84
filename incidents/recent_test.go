package incidents_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// What a public feed lists: the chosen types, active or closed lately,
// never a drill, optionally one community.
func TestRecentListsWhatThePublicMaySee(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		open := func(community, key, typ string, north float64, drill bool) incidents.Incident {
			t.Helper()
			where := geo.Offset(centre, north, 0)
			ev := f.press(t, community, "r-"+key, key, typ, &where)
			if drill {
				var err error
				if ev, err = asDrill(ev); err != nil {
					t.Fatal(err)
				}
			}
			f.handle(t, ev)
			list := f.list(t, incidents.Filter{Community: community, Limit: 1})
			return list[0]
		}
		closeAt := func(in incidents.Incident, status incidents.Status, at time.Time) {
			t.Helper()
			in.Status, in.ClosedAt = status, at
			if err := incidents.Save(ctx, db, in); err != nil {
				t.Fatal(err)
			}
		}
		floodOpen := open("xinhua", "a", "flood", 0, false)
		f.clock.Advance(time.Minute)
		floodResolved := open("xinhua", "b", "flood", 5000, false)
		closeAt(floodResolved, incidents.StatusResolved, start.Add(-2*time.Hour))
		f.clock.Advance(time.Minute)
		floodLongAgo := open("xinhua", "c", "flood", 10000, false)
		closeAt(floodLongAgo, incidents.StatusResolved, start.Add(-30*time.Hour))
		f.clock.Advance(time.Minute)
		gasCancelled := open("xinhua", "d", "gas_leak", 0, false)
		closeAt(gasCancelled, incidents.StatusCancelled, start.Add(-time.Hour))
		f.clock.Advance(time.Minute)
		open("xinhua", "e", "medical", 0, false)
		f.clock.Advance(time.Minute)
		if drill := open("xinhua", "f", "flood", 20000, true); !drill.Drill {
			t.Fatalf("the drill press opened a real incident: %+v", drill)
		}
		f.clock.Advance(time.Minute)
		elsewhere := open("huaihai", "g", "flood", 3000, false)

		recent := func(filter incidents.RecentFilter) []string {
			t.Helper()
			list, err := incidents.Recent(ctx, db, filter)
			if err != nil {
				t.Fatalf("recent %+v: %v", filter, err)
			}
			ids := []string{}
			for _, in := range list {
				ids = append(ids, in.ID)
			}
			return ids
		}
		since := start.Add(-24 * time.Hour)
		all := incidents.RecentFilter{Types: []string{"flood", "gas_leak"}, ClosedSince: since}
		if got, want := recent(all), []string{elsewhere.ID, gasCancelled.ID, floodResolved.ID, floodOpen.ID}; !slices.Equal(got, want) {
			t.Errorf("recent: %v, want %v (newest first; no medical, no drill, nothing closed 30 h ago)", got, want)
		}
		xinhua := all
		xinhua.Community = "xinhua"
		if got, want := recent(xinhua), []string{gasCancelled.ID, floodResolved.ID, floodOpen.ID}; !slices.Equal(got, want) {
			t.Errorf("one community: %v, want %v", got, want)
		}
		limited := all
		limited.Limit = 1
		if got := recent(limited); !slices.Equal(got, []string{elsewhere.ID}) {
			t.Errorf("limit 1: %v", got)
		}
		if got := recent(incidents.RecentFilter{ClosedSince: since}); len(got) != 0 {
			t.Errorf("no public types must list nothing, got %v", got)
		}
	})
}

// asDrill turns a press into the same press made during a drill.
func asDrill(ev events.Event) (events.Event, error) {
	var a incidents.Alarm
	if err := ev.Decode(&a); err != nil {
		return ev, err
	}
	a.Drill = true
	drill, err := events.New(ev.ID, ev.Type, ev.Subject, ev.Community, ev.OccurredAt, a)
	drill.Actor, drill.Drill = ev.Actor, true
	return drill, err
}
