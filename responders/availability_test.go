package responders

import (
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
)

func shanghai(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, Zone)
	if err != nil {
		panic(err)
	}
	return t
}

func TestAvailabilityAt(t *testing.T) {
	weekdayNights := Availability{{Days: []int{1, 2, 3, 4, 5}, Start: "18:00", End: "08:00"}}
	weekends := Availability{{Days: []int{6, 7}, Start: "00:00", End: "24:00"}}
	sundayNight := Availability{{Days: []int{7}, Start: "22:00", End: "06:00"}}
	// 2026-11-23 is a Monday.
	for _, tc := range []struct {
		name string
		a    Availability
		at   string
		want bool
	}{
		{"no windows means any time", nil, "2026-11-25 03:00", true},
		{"weekday evening", weekdayNights, "2026-11-23 18:00", true},
		{"weekday afternoon", weekdayNights, "2026-11-23 17:59", false},
		{"Tuesday early morning belongs to Monday night", weekdayNights, "2026-11-24 07:59", true},
		{"end is exclusive", weekdayNights, "2026-11-24 08:00", false},
		{"Saturday morning ends Friday night", weekdayNights, "2026-11-28 07:00", true},
		{"Saturday evening is not a weekday night", weekdayNights, "2026-11-28 19:00", false},
		{"Monday early morning is not covered (Sunday night not listed)", weekdayNights, "2026-11-23 03:00", false},
		{"weekend all day", weekends, "2026-11-29 23:59", true},
		{"weekend ends at Monday midnight", weekends, "2026-11-30 00:00", false},
		{"Sunday night wraps into Monday", sundayNight, "2026-11-23 05:00", true},
		{"UTC instants are read in Shanghai", weekdayNights, "2026-11-23 18:30", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := shanghai(tc.at)
			if tc.name == "UTC instants are read in Shanghai" {
				at = at.UTC()
			}
			if got := tc.a.At(at); got != tc.want {
				t.Fatalf("%v at %s: got %v, want %v", tc.a, tc.at, got, tc.want)
			}
		})
	}
}

func TestParseAvailability(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Availability
	}{
		{"", nil},
		{"随时", nil},
		{"工作日 18:00-08:00", Availability{{Days: []int{1, 2, 3, 4, 5}, Start: "18:00", End: "08:00"}}},
		{"工作日 18:00-08:00；周末 全天", Availability{
			{Days: []int{1, 2, 3, 4, 5}, Start: "18:00", End: "08:00"}, {Days: []int{6, 7}, Start: "00:00", End: "24:00"}}},
		{"周一至周五 19:00~23:00", Availability{{Days: []int{1, 2, 3, 4, 5}, Start: "19:00", End: "23:00"}}},
		{"周六、周日 9:00-17:30", Availability{{Days: []int{6, 7}, Start: "09:00", End: "17:30"}}},
		{"星期六至星期一 8:00-20:00", Availability{{Days: []int{1, 6, 7}, Start: "08:00", End: "20:00"}}},
		{"Mon-Fri 18:00-08:00; Sat,Sun all day", Availability{
			{Days: []int{1, 2, 3, 4, 5}, Start: "18:00", End: "08:00"}, {Days: []int{6, 7}, Start: "00:00", End: "24:00"}}},
		{"每天 20:00-06:00", Availability{{Days: []int{1, 2, 3, 4, 5, 6, 7}, Start: "20:00", End: "06:00"}}},
	} {
		got, err := ParseAvailability(tc.in)
		if err != nil {
			t.Errorf("ParseAvailability(%q): %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseAvailability(%q) = %+v, want %+v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			g, w := got[i], tc.want[i]
			if g.Start != w.Start || g.End != w.End || len(g.Days) != len(w.Days) {
				t.Errorf("ParseAvailability(%q)[%d] = %+v, want %+v", tc.in, i, g, w)
				continue
			}
			for j := range g.Days {
				if g.Days[j] != w.Days[j] {
					t.Errorf("ParseAvailability(%q)[%d] days = %v, want %v", tc.in, i, g.Days, w.Days)
				}
			}
		}
	}
	for _, bad := range []string{"晚上", "工作日", "周八 18:00-20:00", "工作日 25:00-08:00", "工作日 18:00-18:00", "工作日 6pm-8am"} {
		if a, err := ParseAvailability(bad); err == nil {
			t.Errorf("ParseAvailability(%q) = %+v, want an error", bad, a)
		}
	}
}

func TestRankHonoursAvailabilityWindows(t *testing.T) {
	tax := events.DefaultTaxonomy()
	centre := geo.Point{Lat: 31.2304, Lng: 121.4737}
	cert := []Certificate{{Skill: "medic", ExpiresAt: shanghai("2030-01-01 00:00")}}
	day := Responder{ID: "day", Skills: []string{"medic"}, Certificates: cert, Available: true, Location: centre,
		Availability: Availability{{Days: []int{1, 2, 3, 4, 5}, Start: "08:00", End: "18:00"}}}
	night := Responder{ID: "night", Skills: []string{"medic"}, Certificates: cert, Available: true, Location: centre,
		Availability: Availability{{Days: []int{1, 2, 3, 4, 5}, Start: "18:00", End: "08:00"}}}
	ids := func(cs []Candidate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Responder.ID)
		}
		return out
	}
	rs := []Responder{day, night}
	if got := ids(Rank(tax, rs, []string{"medic"}, centre, 1000, shanghai("2026-11-23 10:00"), nil, 5)); len(got) != 1 || got[0] != "day" {
		t.Errorf("Monday 10:00: offered %v, want only the day medic", got)
	}
	if got := ids(Rank(tax, rs, []string{"medic"}, centre, 1000, shanghai("2026-11-24 02:00"), nil, 5)); len(got) != 1 || got[0] != "night" {
		t.Errorf("Tuesday 02:00: offered %v, want only the night medic", got)
	}
	if got := ids(Rank(tax, rs, []string{"medic"}, centre, 1000, shanghai("2026-11-29 12:00"), nil, 5)); len(got) != 0 {
		t.Errorf("Sunday noon: offered %v, want nobody", got)
	}
}
