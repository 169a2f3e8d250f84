package responders_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

func countResponders(t *testing.T, db storage.DB, community string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM responders WHERE community_id = $1`, community).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func byPhone(t *testing.T, reg *responders.Registry, community, phone string) responders.Responder {
	t.Helper()
	all, err := reg.ListResponders(context.Background(), community, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if r.Phone == phone {
			return r
		}
	}
	t.Fatalf("no responder with phone %s", phone)
	return responders.Responder{}
}

// A roster with a bad row imports nothing unless asked to skip bad rows;
// a dry run writes nothing; importing again updates by phone and never
// duplicates; what the roster does not own (availability switch, the
// incident someone is busy with) survives a re-import.
func TestImportRosterStore(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "c1")
		team, err := reg.CreateOrganisation(ctx, responders.Organisation{Community: "c1", Kind: responders.OrgVolunteerTeam, Name: "平安志愿队"})
		if err != nil {
			t.Fatal(err)
		}
		header := []string{"姓名", "手机号", "技能", "证书", "证书有效期", "党员", "队伍", "经纬度"}
		rows := [][]string{header,
			{"张三", "13800000000", "急救", "急救证 A1", "2027-06-30", "是", "平安志愿队", "31.2304,121.4737"},
			{"李四", "13800000001", "消防", "消防员证", "2027-06-30", "否", "", "31.2305,121.4738"},
			{"王五", "1380000", "", "", "", "", "", "31.2306,121.4739"},
		}
		badRow := []responders.RosterProblem{{Row: 4, Column: "手机号", Value: "1380000",
			Message:   "手机号无效：请写 11 位手机号（如 13800000000）或带国家码的号码（如 +85291234567）",
			MessageEN: "not a mobile number: write 11 digits (13800000000) or the number with its country code (+85291234567)"}}

		rep, err := reg.ImportRoster(ctx, "c1", rows, responders.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Refused() || rep.Imported || rep.Created != 2 || rep.Failed != 1 || !reflect.DeepEqual(rep.Errors, badRow) {
			t.Fatalf("with a bad row: %+v, want refused, 2 would be created, the bad row reported", rep)
		}
		if n := countResponders(t, db, "c1"); n != 0 {
			t.Fatalf("refused import wrote %d responders", n)
		}

		rep, err = reg.ImportRoster(ctx, "c1", rows, responders.ImportOptions{DryRun: true, SkipBad: true})
		if err != nil || rep.Imported || rep.Refused() || rep.Created != 2 || len(rep.Errors) != 1 {
			t.Fatalf("dry run: %+v, %v", rep, err)
		}
		if n := countResponders(t, db, "c1"); n != 0 {
			t.Fatalf("dry run wrote %d responders", n)
		}

		var progress []int
		rep, err = reg.ImportRoster(ctx, "c1", rows, responders.ImportOptions{SkipBad: true,
			Progress: func(done, total int) { progress = append(progress, done, total) }})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Imported || rep.Created != 2 || rep.Failed != 1 || !reflect.DeepEqual(rep.Errors, badRow) {
			t.Fatalf("skip bad: %+v", rep)
		}
		if !reflect.DeepEqual(progress, []int{1, 2, 2, 2}) {
			t.Errorf("progress %v", progress)
		}
		zhang := byPhone(t, reg, "c1", "+8613800000000")
		want := responders.Responder{ID: zhang.ID, Community: "c1", Name: "张三", Phone: "+8613800000000", Skills: []string{"medic"},
			Certificates: []responders.Certificate{{Skill: "medic", Name: "急救证", Number: "A1", ExpiresAt: time.Date(2027, 7, 1, 0, 0, 0, 0, responders.Zone)}},
			PartyMember:  true, Kind: responders.KindVolunteer, Team: team.ID, Location: centre, Available: true, Locale: "zh-CN",
			CreatedAt: clock, UpdatedAt: clock}
		zhang.Certificates[0].ExpiresAt = zhang.Certificates[0].ExpiresAt.In(responders.Zone)
		if !reflect.DeepEqual(zhang, want) {
			t.Errorf("stored\n %+v\nwant\n %+v", zhang, want)
		}
		if !zhang.Qualified(reg.Tax, "medic", clock) {
			t.Error("an imported medic with a valid certificate does not qualify")
		}

		// Between imports: 张三 switches himself off and is sent to an incident.
		off := false
		if _, err := reg.UpdateResponder(ctx, "c1", zhang.ID, responders.ResponderPatch{Available: &off}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `UPDATE responders SET busy_incident = 'inc_1' WHERE id = $1`, zhang.ID); err != nil {
			t.Fatal(err)
		}

		// The same file again, phones written differently: nothing changes.
		rows[1][1], rows[2][1] = "+86 138-0000-0000", "138 0000 0001"
		rep, err = reg.ImportRoster(ctx, "c1", rows, responders.ImportOptions{SkipBad: true})
		if err != nil || rep.Created != 0 || rep.Updated != 0 || rep.Unchanged != 2 || rep.Failed != 1 {
			t.Fatalf("re-import: %+v, %v", rep, err)
		}

		// 李四 learns first aid: he is updated in place.
		later := clock.Add(time.Hour)
		reg.Now = func() time.Time { return later }
		rows[2][2], rows[2][3] = "消防、急救", "消防员证；急救证"
		rep, err = reg.ImportRoster(ctx, "c1", rows[:3], responders.ImportOptions{})
		if err != nil || !rep.Imported || rep.Created != 0 || rep.Updated != 1 || rep.Unchanged != 1 || len(rep.Errors) != 0 {
			t.Fatalf("changed skill: %+v, %v", rep, err)
		}
		if n := countResponders(t, db, "c1"); n != 2 {
			t.Fatalf("%d responders after re-imports, want 2", n)
		}
		li := byPhone(t, reg, "c1", "+8613800000001")
		if !reflect.DeepEqual(li.Skills, []string{"firefighting", "medic"}) || len(li.Certificates) != 2 || !li.CreatedAt.Equal(clock) || !li.UpdatedAt.Equal(later) {
			t.Errorf("李四 after re-import: %+v", li)
		}
		again := byPhone(t, reg, "c1", "+8613800000000")
		if again.ID != zhang.ID || again.Available || again.BusyIncident != "inc_1" || !again.UpdatedAt.Equal(clock) {
			t.Errorf("张三 after re-imports: %+v, want the same id, still unavailable and busy, not touched", again)
		}
	})
}

// A file without some columns changes only what it has: a phone list
// with new coordinates moves people and keeps their skills.
func TestImportRosterKeepsColumnsTheFileLacks(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "c1")
		first := [][]string{{"姓名", "手机号", "技能", "证书", "证书有效期", "可用时间", "经纬度"},
			{"张三", "13800000000", "急救", "急救证", "2027-06-30", "工作日 18:00-08:00", "31.2304,121.4737"}}
		if rep, err := reg.ImportRoster(ctx, "c1", first, responders.ImportOptions{}); err != nil || rep.Created != 1 {
			t.Fatalf("first import: %+v %v", rep, err)
		}
		second := [][]string{{"姓名", "手机号", "纬度", "经度"}, {"张三", "13800000000", "31.25", "121.45"}}
		rep, err := reg.ImportRoster(ctx, "c1", second, responders.ImportOptions{})
		if err != nil || rep.Updated != 1 {
			t.Fatalf("second import: %+v %v", rep, err)
		}
		got := byPhone(t, reg, "c1", "+8613800000000")
		if got.Location.Lat != 31.25 || got.Location.Lng != 121.45 || !reflect.DeepEqual(got.Skills, []string{"medic"}) ||
			len(got.Certificates) != 1 || len(got.Availability) != 1 {
			t.Errorf("after a coordinates-only import: %+v", got)
		}
	})
}

func TestImportRosterUnknownCommunity(t *testing.T) {
	reg := newRegistry(storagetest.SQLite(t))
	_, err := reg.ImportRoster(context.Background(), "nowhere", [][]string{{"姓名", "手机号", "经纬度"}}, responders.ImportOptions{})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
}
