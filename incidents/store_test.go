package incidents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// The intake contract against both stores and a real embedded bus: an alarm
// opens an incident or joins one, exactly once however often it is handled.

var (
	centre = geo.Point{Lat: 31.2304, Lng: 121.4737} // 新华社区
	start  = time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type fixture struct {
	db     storage.DB
	bus    *events.Bus
	clock  *clock
	intake *incidents.Intake
}

func newFixture(t *testing.T, db storage.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	bus, err := events.Connect(ctx, events.BusConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("embedded bus: %v", err)
	}
	t.Cleanup(bus.Close)
	clk := &clock{now: start}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := &responders.Registry{DB: db, Tax: events.DefaultTaxonomy(), Now: clk.Now}
	for _, c := range []responders.Community{
		{ID: "xinhua", Name: "新华社区", Location: centre},
		{ID: "huaihai", Name: "淮海社区", Location: geo.Offset(centre, 3000, 0)},
	} {
		if _, err := reg.CreateCommunity(ctx, c); err != nil {
			t.Fatalf("community %s: %v", c.ID, err)
		}
	}
	return &fixture{db: db, bus: bus, clock: clk, intake: &incidents.Intake{
		DB: db, Tax: events.DefaultTaxonomy(), Relay: events.NewRelay(db, bus, log), Log: log, Now: clk.Now,
	}}
}

// press builds the alarm.pressed event the API would publish for a
// resident's press at the fixture's current time; where nil means no GPS fix.
func (f *fixture) press(t *testing.T, community, resident, key, typ string, where *geo.Point) events.Event {
	t.Helper()
	req := incidents.AlarmRequest{Key: key, Type: typ, Address: "3号楼2单元"}
	if where != nil {
		lat, lng := where.Lat, where.Lng
		req.Location = &struct {
			Lat *float64 `json:"lat"`
			Lng *float64 `json:"lng"`
		}{&lat, &lng}
	}
	a, err := incidents.NewAlarm(events.DefaultTaxonomy(), community, resident, req, f.clock.Now())
	if err != nil {
		t.Fatalf("alarm: %v", err)
	}
	ev, err := events.New(a.ID, "alarm.pressed", events.AlarmSubject(a.Community, a.Type), a.Community, a.ReceivedAt, a)
	if err != nil {
		t.Fatal(err)
	}
	ev.Actor = resident
	return ev
}

func (f *fixture) handle(t *testing.T, ev events.Event) {
	t.Helper()
	if err := f.intake.Handle(context.Background(), ev); err != nil {
		t.Fatalf("handle %s: %v", ev.ID, err)
	}
}

func (f *fixture) list(t *testing.T, filter incidents.Filter) []incidents.Incident {
	t.Helper()
	list, err := incidents.List(context.Background(), f.db, filter)
	if err != nil {
		t.Fatalf("list %+v: %v", filter, err)
	}
	return list
}

func (f *fixture) timeline(t *testing.T, id string) []string {
	t.Helper()
	entries, err := incidents.Timeline(context.Background(), f.db, id)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{}
	for _, e := range entries {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

// published lists the events JetStream holds on the incidents stream.
func (f *fixture) published(t *testing.T) []events.Event {
	t.Helper()
	ctx := context.Background()
	s, err := f.bus.JetStream().Stream(ctx, events.StreamIncidents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		var ev events.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Subject != m.Subject {
			t.Errorf("event %s says subject %s but was published on %s", ev.ID, ev.Subject, m.Subject)
		}
		out = append(out, ev)
	}
	return out
}

func (f *fixture) outbox(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM event_outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func types(evs []events.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Type+" "+e.Subject)
	}
	return out
}

func TestIntakeOpensAttachesAndIsIdempotent(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		home := centre

		// 张阿姨 presses fire: an incident opens.
		first := f.press(t, "xinhua", "zhang", "k-1", "fire", &home)
		f.handle(t, first)
		list := f.list(t, incidents.Filter{Community: "xinhua"})
		if len(list) != 1 {
			t.Fatalf("incidents = %+v, want one", list)
		}
		in := list[0]
		want := incidents.Incident{ID: in.ID, Community: "xinhua", Type: "fire", Category: "accident_disaster", Severity: 3,
			Status: incidents.StatusOpen, Location: home, Address: "3号楼2单元", Reports: 1, Needed: 3,
			OpenedAt: start, LastReportAt: start}
		if !reflect.DeepEqual(in, want) {
			t.Errorf("opened incident\n got %+v\nwant %+v", in, want)
		}
		if got := f.timeline(t, in.ID); !reflect.DeepEqual(got, []string{"opened"}) {
			t.Errorf("timeline = %v, want [opened]", got)
		}
		pub := f.published(t)
		if len(pub) != 1 || pub[0].Type != "incident.opened" || pub[0].Subject != "incidents.xinhua.fire.opened" {
			t.Fatalf("published %v, want one incident.opened on incidents.xinhua.fire.opened", types(pub))
		}
		var p incidents.Payload
		if err := pub[0].Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.ID != in.ID || p.Severity != "III" || p.Reports != 1 || p.Status != incidents.StatusOpen || pub[0].Actor != "zhang" {
			t.Errorf("opened payload = %+v (actor %q), want incident %s, severity III, 1 report, by zhang", p, pub[0].Actor, in.ID)
		}
		if n := f.outbox(t); n != 0 {
			t.Errorf("%d messages left in the outbox after a successful publish", n)
		}
		st, err := incidents.GetAlarm(ctx, db, first.ID, "xinhua", "zhang")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "attached" || !st.Opened || st.Incident != in.ID || st.Type != "fire" || !st.ReceivedAt.Equal(start) {
			t.Errorf("alarm state = %+v, want attached, opened %s", st, in.ID)
		}

		// The bus redelivers the same press (a lost ack): nothing changes.
		f.clock.Advance(10 * time.Second)
		f.handle(t, first)
		if got := f.list(t, incidents.Filter{Community: "xinhua"}); len(got) != 1 || got[0].Reports != 1 {
			t.Fatalf("after redelivery incidents = %+v, want one with 1 report", got)
		}
		if got := f.timeline(t, in.ID); len(got) != 1 {
			t.Errorf("after redelivery timeline = %v, want one entry", got)
		}
		if pub := f.published(t); len(pub) != 1 {
			t.Errorf("after redelivery published %v, want still one event", types(pub))
		}

		// 李先生 next door presses two minutes later: the same fire.
		f.clock.Advance(2 * time.Minute)
		next := geo.Offset(home, 50, 30)
		second := f.press(t, "xinhua", "li", "k-9", "fire", &next)
		f.handle(t, second)
		f.handle(t, second) // and it is redelivered too
		got, err := incidents.Get(ctx, db, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Reports != 2 || !got.LastReportAt.Equal(f.clock.Now()) || got.Location != home || got.Status != incidents.StatusOpen {
			t.Errorf("after the second press incident = %+v, want 2 reports, last report now, location unchanged", got)
		}
		if kinds := f.timeline(t, in.ID); !reflect.DeepEqual(kinds, []string{"opened", "report_added"}) {
			t.Errorf("timeline = %v, want [opened report_added]", kinds)
		}
		pub = f.published(t)
		if len(pub) != 2 || pub[1].Type != "incident.report_added" || pub[1].Subject != "incidents.xinhua.fire.report_added" {
			t.Errorf("published %v, want opened then one report_added", types(pub))
		}
		st, err = incidents.GetAlarm(ctx, db, second.ID, "xinhua", "li")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "attached" || st.Opened || st.Incident != in.ID {
			t.Errorf("second alarm state = %+v, want attached to %s without opening", st, in.ID)
		}
		if n := len(f.list(t, incidents.Filter{Community: "xinhua"})); n != 1 {
			t.Errorf("%d incidents, want the second press to join the first", n)
		}
	})
}

func TestIntakeOpensSeparateIncidents(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		north   float64       // metres from the first press
		east    float64       // metres from the first press
		after   time.Duration // after the first press
		drill   bool
		wantNew bool
	}{
		{"same fire 100 m away", "fire", 100, 0, time.Minute, false, false},
		{"fire 1 km away", "fire", 1000, 0, time.Minute, false, true},
		// Correlation reads only the incidents in a box around the press:
		// one just inside fire's 150 m radius, in every direction, joins.
		{"same fire 145 m east", "fire", 0, 145, time.Minute, false, false},
		{"same fire 145 m south-west", "fire", -102, -102, time.Minute, false, false},
		{"fire 160 m west", "fire", 0, -160, time.Minute, false, true},
		{"fire in the box's corner, 190 m away", "fire", 134, 134, time.Minute, false, true},
		{"fire at the same place after the window", "fire", 0, 0, 31 * time.Minute, false, true},
		{"medical emergency at the same place", "medical", 0, 0, time.Minute, false, true},
		{"drill press at the same place", "fire", 0, 0, time.Minute, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storagetest.Each(t, func(t *testing.T, db storage.DB) {
				f := newFixture(t, db)
				home := centre
				f.handle(t, f.press(t, "xinhua", "zhang", "first", "fire", &home))
				f.clock.Advance(tt.after)
				there := geo.Offset(home, tt.north, tt.east)
				ev := f.press(t, "xinhua", "li", "second", tt.typ, &there)
				if tt.drill {
					var a incidents.Alarm
					if err := ev.Decode(&a); err != nil {
						t.Fatal(err)
					}
					a.Drill = true
					ev, _ = events.New(a.ID, ev.Type, ev.Subject, a.Community, a.ReceivedAt, a)
				}
				f.handle(t, ev)

				list := f.list(t, incidents.Filter{Community: "xinhua"})
				wantN := 1
				if tt.wantNew {
					wantN = 2
				}
				if len(list) != wantN {
					t.Fatalf("incidents = %d, want %d", len(list), wantN)
				}
				total := 0
				for _, in := range list {
					total += in.Reports
				}
				if total != 2 {
					t.Errorf("reports across incidents = %d, want 2", total)
				}
				if tt.wantNew {
					newest := list[0] // newest first
					if newest.Type != tt.typ || newest.Reports != 1 || newest.Drill != tt.drill {
						t.Errorf("second incident = %+v, want type %s, 1 report, drill %v", newest, tt.typ, tt.drill)
					}
				}
			})
		})
	}
}

func TestIntakeAlarmWithoutLocationUsesCommunityCentre(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)

		ev := f.press(t, "huaihai", "wang", "no-gps", "", nil) // no type, no fix
		f.handle(t, ev)
		list := f.list(t, incidents.Filter{Community: "huaihai"})
		if len(list) != 1 {
			t.Fatalf("incidents = %+v, want one", list)
		}
		if want := geo.Offset(centre, 3000, 0); list[0].Location != want || list[0].Type != "other" {
			t.Errorf("incident at %v of type %s, want the community centre %v, type other", list[0].Location, list[0].Type, want)
		}
		if st, err := incidents.GetAlarm(ctx, db, ev.ID, "huaihai", "wang"); err != nil || st.Incident != list[0].ID {
			t.Errorf("alarm state = %+v, %v; want attached to %s", st, err, list[0].ID)
		}

		// An alarm of a community that does not exist can never be placed:
		// it is a permanent failure, and nothing is stored.
		lost := f.press(t, "atlantis", "wang", "no-gps", "", nil)
		err := f.intake.Handle(ctx, lost)
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("handle alarm of an unknown community: err = %v, want ErrNotFound", err)
		}
		if _, err := incidents.GetAlarm(ctx, db, lost.ID, "atlantis", "wang"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("alarm of an unknown community was recorded: %v", err)
		}
	})
}

func TestIntakeConcurrentPressesOpenOneIncident(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		f := newFixture(t, db)
		// Five neighbours press at once and two replicas each handle every
		// press: one incident, five reports.
		var evs []events.Event
		for i := range 5 {
			p := geo.Offset(centre, float64(i*10), 0)
			evs = append(evs, f.press(t, "xinhua", fmt.Sprintf("resident-%d", i), "k", "fire", &p))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(evs))
		for range 2 {
			for _, ev := range evs {
				wg.Go(func() { errs <- f.intake.Handle(context.Background(), ev) })
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("handle: %v", err)
			}
		}
		list := f.list(t, incidents.Filter{Community: "xinhua"})
		if len(list) != 1 || list[0].Reports != 5 {
			t.Fatalf("incidents = %+v, want one with 5 reports", list)
		}
		if kinds := f.timeline(t, list[0].ID); len(kinds) != 5 {
			t.Errorf("timeline = %v, want 1 opened + 4 report_added", kinds)
		}
		if pub := f.published(t); len(pub) != 5 {
			t.Errorf("published %v, want 5 incident events", types(pub))
		}
	})
}

func TestListFiltersAndWhoMayRead(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		home, far := centre, geo.Offset(centre, 2000, 0)
		f.handle(t, f.press(t, "xinhua", "zhang", "a", "fire", &home))
		f.clock.Advance(time.Minute)
		f.handle(t, f.press(t, "xinhua", "li", "b", "fire", &home)) // joins zhang's fire
		f.clock.Advance(time.Minute)
		f.handle(t, f.press(t, "xinhua", "zhang", "c", "flood", &far))
		f.clock.Advance(time.Minute)
		f.handle(t, f.press(t, "huaihai", "zhang", "d", "fire", nil)) // another community's zhang

		all := f.list(t, incidents.Filter{Community: "xinhua"})
		if len(all) != 2 || all[0].Type != "flood" || all[1].Type != "fire" {
			t.Fatalf("xinhua incidents = %+v, want flood then fire (newest first)", all)
		}
		flood, fire := all[0], all[1]

		// The flood is over.
		err := db.InTx(ctx, func(q storage.Querier) error {
			in, err := incidents.Lock(ctx, q, flood.ID)
			if err != nil {
				return err
			}
			in.Status, in.ClosedAt = incidents.StatusResolved, f.clock.Now()
			return incidents.Save(ctx, q, in)
		})
		if err != nil {
			t.Fatal(err)
		}

		ids := func(list []incidents.Incident) []string {
			out := []string{}
			for _, in := range list {
				out = append(out, in.ID)
			}
			return out
		}
		tests := []struct {
			name   string
			filter incidents.Filter
			want   []string
		}{
			{"active", incidents.Filter{Community: "xinhua", Status: "active"}, []string{fire.ID}},
			{"resolved", incidents.Filter{Community: "xinhua", Status: "resolved"}, []string{flood.ID}},
			{"open", incidents.Filter{Community: "xinhua", Status: "open"}, []string{fire.ID}},
			{"escalated", incidents.Filter{Community: "xinhua", Status: "escalated"}, []string{}},
			{"what zhang reported", incidents.Filter{Community: "xinhua", Resident: "zhang"}, []string{flood.ID, fire.ID}},
			{"what li reported", incidents.Filter{Community: "xinhua", Resident: "li"}, []string{fire.ID}},
			{"li's active", incidents.Filter{Community: "xinhua", Resident: "li", Status: "active"}, []string{fire.ID}},
			{"a stranger", incidents.Filter{Community: "xinhua", Resident: "zhao"}, []string{}},
			{"limit", incidents.Filter{Community: "xinhua", Limit: 1}, []string{flood.ID}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := ids(f.list(t, tt.filter)); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("List(%+v) = %v, want %v", tt.filter, got, tt.want)
				}
			})
		}
		if n := len(f.list(t, incidents.Filter{})); n != 3 {
			t.Errorf("all communities: %d incidents, want 3", n)
		}
		resolved, err := incidents.Get(ctx, db, flood.ID)
		if err != nil {
			t.Fatal(err)
		}
		if resolved.Status != incidents.StatusResolved || !resolved.ClosedAt.Equal(f.clock.Now()) {
			t.Errorf("resolved flood = %+v", resolved)
		}

		for _, tt := range []struct {
			incident, community, resident string
			want                          bool
		}{
			{fire.ID, "xinhua", "zhang", true},
			{fire.ID, "xinhua", "li", true},
			{flood.ID, "xinhua", "li", false},
			{fire.ID, "huaihai", "zhang", false}, // the other zhang
			{fire.ID, "xinhua", "zhao", false},
		} {
			got, err := incidents.ReportedBy(ctx, db, tt.incident, tt.community, tt.resident)
			if err != nil || got != tt.want {
				t.Errorf("ReportedBy(%s, %s, %s) = %v, %v; want %v", tt.incident, tt.community, tt.resident, got, err, tt.want)
			}
		}

		// A resident can look up only their own press.
		liAlarm := incidents.AlarmID("xinhua", "li", "b")
		if _, err := incidents.GetAlarm(ctx, db, liAlarm, "xinhua", "zhang"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("zhang read li's alarm: err = %v, want ErrNotFound", err)
		}
		if _, err := incidents.GetAlarm(ctx, db, incidents.AlarmID("xinhua", "li", "never"), "xinhua", "li"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("unknown alarm: err = %v, want ErrNotFound", err)
		}
		if _, err := incidents.Get(ctx, db, "in_missing"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("unknown incident: err = %v, want ErrNotFound", err)
		}
	})
}

func TestTimelineIsOrderedAndIdempotent(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		home := centre
		f.handle(t, f.press(t, "xinhua", "zhang", "a", "gas_leak", &home))
		in := f.list(t, incidents.Filter{Community: "xinhua"})[0]

		// Facts arrive out of order: a late event about an earlier moment
		// still lands in its place.
		rec := func(id string, at time.Time, kind string) {
			t.Helper()
			if err := incidents.Record(ctx, db, id, in.ID, at, kind, "dispatcher", map[string]int{"wave": 1}); err != nil {
				t.Fatal(err)
			}
		}
		rec("escalated:1", start.Add(10*time.Minute), "escalated")
		rec("dispatched:1", start.Add(time.Second), "dispatched")
		rec("dispatched:1", start.Add(time.Second), "dispatched") // redelivered
		rec("accepted:1", start.Add(5*time.Minute), "offer_accepted")

		entries, err := incidents.Timeline(ctx, db, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for i, e := range entries {
			kinds = append(kinds, e.Kind)
			if i > 0 && e.At.Before(entries[i-1].At) {
				t.Errorf("entry %d at %v is before entry %d at %v", i, e.At, i-1, entries[i-1].At)
			}
		}
		want := []string{"opened", "dispatched", "offer_accepted", "escalated"}
		if !reflect.DeepEqual(kinds, want) {
			t.Fatalf("timeline = %v, want %v", kinds, want)
		}
		if e := entries[1]; e.Actor != "dispatcher" || string(e.Detail) != `{"wave":1}` || !e.At.Equal(start.Add(time.Second)) {
			t.Errorf("dispatched entry = %+v", e)
		}
		var opened map[string]any
		if err := json.Unmarshal(entries[0].Detail, &opened); err != nil || opened["alarm_id"] != incidents.AlarmID("xinhua", "zhang", "a") {
			t.Errorf("opened detail = %s, want the alarm id", entries[0].Detail)
		}
		if other, err := incidents.Timeline(ctx, db, "in_other"); err != nil || len(other) != 0 {
			t.Errorf("timeline of another incident = %v, %v; want empty", other, err)
		}
	})
}

// Presses handled at the same moment share a transaction (a storm holds
// the correlation lock once, not once a press): the outcome is what
// separate transactions would give, and a press that cannot be handled
// fails alone.
func TestIntakeStormSharesTransactionsAndIsolatesABadPress(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		f := newFixture(t, db)
		const n = 60
		var evs []events.Event
		for i := range n {
			p := geo.Offset(centre, float64(i%7)*10, float64(i%5)*10)
			evs = append(evs, f.press(t, "xinhua", fmt.Sprintf("resident-%d", i), "k", "fire", &p))
		}
		// No location and a community that does not exist: no centre to use.
		bad := f.press(t, "nowhere", "resident-x", "k", "fire", nil)
		all := append([]events.Event{}, evs...)
		all = append(all[:n/2], append([]events.Event{bad}, all[n/2:]...)...)
		var wg sync.WaitGroup
		errs := make([]error, len(all))
		for i, ev := range all {
			wg.Go(func() { errs[i] = f.intake.Handle(context.Background(), ev) })
		}
		wg.Wait()
		for i, err := range errs {
			if all[i].ID == bad.ID {
				if !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("bad press: err = %v, want its community not found", err)
				}
				continue
			}
			if err != nil {
				t.Errorf("press %d: %v", i, err)
			}
		}
		list := f.list(t, incidents.Filter{Community: "xinhua"})
		if len(list) != 1 || list[0].Reports != n {
			t.Fatalf("incidents = %+v, want one with %d reports", list, n)
		}
		var alarms int
		if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM alarms WHERE incident_id = $1`, list[0].ID).Scan(&alarms); err != nil || alarms != n {
			t.Errorf("alarms of the incident = %d, %v; want %d", alarms, err, n)
		}
		if pub := f.published(t); len(pub) != n {
			t.Errorf("published %d incident events, want %d", len(pub), n)
		}
	})
}
