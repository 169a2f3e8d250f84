package responders_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

func gapTexts(rep responders.Readiness, skill string) []string {
	var out []string
	for _, g := range rep.Gaps {
		if g.Skill == skill {
			out = append(out, g.Text.ZH)
		}
	}
	return out
}

func coverage(rep responders.Readiness, grid, skill, band string) map[string]int {
	for _, c := range rep.Coverage {
		if c.Grid == grid && c.Skill == skill && c.Band == band {
			return c.Within
		}
	}
	return nil
}

// A community with two grids: grid 3 is covered by a day-only medic, so at
// night nobody certified for first aid is within 500 m; adding a medic
// who is home at night closes the gap.
func TestReadinessFindsAndLosesANightGap(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		grid3 := geo.Offset(centre, 0, 0)
		grid5 := geo.Offset(centre, 3000, 0) // 3 km north: out of everyone's reach
		for _, g := range []responders.Grid{
			{ID: "g3", Community: "xinhua", Name: "3 网格", Location: grid3},
			{ID: "g5", Community: "xinhua", Name: "5 网格", Location: grid5},
		} {
			if _, err := reg.SaveGrid(ctx, g); err != nil {
				t.Fatalf("save grid %s: %v", g.ID, err)
			}
		}
		cert := []responders.Certificate{{Skill: "medic", Name: "红十字救护员证", ExpiresAt: clock.AddDate(1, 0, 0)}}
		medic := func(name, phone string, at geo.Point, avail responders.Availability) {
			t.Helper()
			_, err := reg.CreateResponder(ctx, responders.Responder{Community: "xinhua", Name: name, Phone: phone,
				Skills: []string{"medic"}, Certificates: cert, Location: at, Available: true, Availability: avail})
			if err != nil {
				t.Fatalf("create %s: %v", name, err)
			}
		}
		days := responders.Availability{{Days: []int{1, 2, 3, 4, 5, 6, 7}, Start: "08:00", End: "18:00"}}
		medic("白班医生", "+8613800000001", geo.Offset(grid3, 200, 0), days)
		// A medic whose certificate ran out does not count.
		_, err := reg.CreateResponder(ctx, responders.Responder{Community: "xinhua", Name: "证书过期", Phone: "+8613800000002",
			Skills: []string{"medic"}, Location: grid3, Available: true,
			Certificates: []responders.Certificate{{Skill: "medic", ExpiresAt: clock.AddDate(0, 0, -1)}}})
		if err != nil {
			t.Fatal(err)
		}

		rep, err := reg.Readiness(ctx, "xinhua", 1)
		if err != nil {
			t.Fatalf("readiness: %v", err)
		}
		if got := coverage(rep, "g3", "medic", "weekday_day"); got["500"] != 1 || got["1000"] != 1 {
			t.Errorf("grid 3 weekday daytime medics = %v, want 1 within 500 m and 1 km", got)
		}
		if got := coverage(rep, "g3", "medic", "weekday_night"); got["500"] != 0 {
			t.Errorf("grid 3 weekday night medics = %v, want 0", got)
		}
		want := "工作日夜间 3 网格 1 公里内没有持证急救人员"
		if texts := gapTexts(rep, "medic"); !contains(texts, want) {
			t.Fatalf("gaps %q do not include %q", texts, want)
		}
		if texts := gapTexts(rep, "medic"); contains(texts, "工作日白天 3 网格 1 公里内没有持证急救人员") {
			t.Errorf("grid 3 is covered by day, but gaps say %q", texts)
		}

		// A night-shift medic 700 m away closes the 1 km gap but not the 500 m one.
		nights := responders.Availability{{Days: []int{1, 2, 3, 4, 5, 6, 7}, Start: "18:00", End: "08:00"}}
		medic("夜班护士", "+8613800000003", geo.Offset(grid3, 700, 0), nights)
		rep, err = reg.Readiness(ctx, "xinhua", 1)
		if err != nil {
			t.Fatal(err)
		}
		if texts := gapTexts(rep, "medic"); contains(texts, want) || !contains(texts, "工作日夜间 3 网格 500 米内没有持证急救人员，1 公里内有 1 名") {
			t.Fatalf("after a night medic 700 m away, gaps = %q", texts)
		}
		medic("楼下邻居", "+8613800000004", geo.Offset(grid3, 100, 0), nights)
		rep, err = reg.Readiness(ctx, "xinhua", 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range gapTexts(rep, "medic") {
			if strings.Contains(text, "3 网格") {
				t.Errorf("grid 3 is covered day and night, but a gap remains: %q", text)
			}
		}
		if texts := gapTexts(rep, "medic"); !contains(texts, "全天 5 网格 1 公里内没有持证急救人员") {
			t.Errorf("grid 5 has no one in reach, gaps = %q", texts)
		}
	})
}

func TestReadinessNeedsSeveral(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		if _, err := reg.CreateResponder(ctx, responders.Responder{Community: "xinhua", Name: "王师傅", Phone: "+8613800000001",
			Skills: []string{"flood_rescue"}, Location: centre, Available: true}); err != nil {
			t.Fatal(err)
		}
		rep, err := reg.Readiness(ctx, "xinhua", 2)
		if err != nil {
			t.Fatal(err)
		}
		// No grids: the community's centre stands for one.
		want := "全天 全社区 1 公里内只有 1 名防汛抢险人员（需要 2 名）"
		if texts := gapTexts(rep, "flood_rescue"); !contains(texts, want) {
			t.Errorf("gaps %q do not include %q", texts, want)
		}
	})
}

func TestGridsAndAvailabilityAreStored(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		g, err := reg.SaveGrid(ctx, responders.Grid{ID: "g1", Community: "xinhua", Name: "1 网格", Location: centre})
		if err != nil {
			t.Fatal(err)
		}
		moved := geo.Offset(centre, 100, 0)
		if _, err := reg.SaveGrid(ctx, responders.Grid{ID: "g1", Community: "xinhua", Name: "一网格", Location: moved}); err != nil {
			t.Fatal(err)
		}
		grids, err := reg.ListGrids(ctx, "xinhua")
		if err != nil || len(grids) != 1 || grids[0].Name != "一网格" || grids[0].Location != moved || !grids[0].CreatedAt.Equal(g.CreatedAt) {
			t.Fatalf("grids after redraw = %+v (%v), want one renamed and moved grid", grids, err)
		}
		if _, err := reg.SaveGrid(ctx, responders.Grid{ID: "Bad Id", Community: "xinhua", Name: "", Location: centre}); err == nil {
			t.Error("a grid with a bad id and no name was saved")
		}
		if err := reg.DeleteGrid(ctx, "xinhua", "g1"); err != nil {
			t.Fatal(err)
		}

		nights := responders.Availability{{Days: []int{1, 2, 3, 4, 5}, Start: "18:00", End: "08:00"}}
		p, err := reg.CreateResponder(ctx, responders.Responder{Community: "xinhua", Name: "李四", Phone: "+8613800000009",
			Location: centre, Available: true, Availability: nights})
		if err != nil {
			t.Fatal(err)
		}
		got, err := reg.GetResponder(ctx, "xinhua", p.ID)
		if err != nil || len(got.Availability) != 1 || got.Availability[0].Start != "18:00" || len(got.Availability[0].Days) != 5 {
			t.Fatalf("availability read back = %+v (%v)", got.Availability, err)
		}
		anyTime := responders.Availability{}
		got, err = reg.UpdateResponder(ctx, "xinhua", p.ID, responders.ResponderPatch{Availability: &anyTime})
		if err != nil || len(got.Availability) != 0 {
			t.Fatalf("clearing availability: %+v (%v)", got.Availability, err)
		}
		bad := responders.Availability{{Days: []int{8}, Start: "18:00", End: "18:00"}}
		_, err = reg.UpdateResponder(ctx, "xinhua", p.ID, responders.ResponderPatch{Availability: &bad})
		wantInvalid(t, err, "availability[0].days")
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
