package responders_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// The registry contract: every test runs against SQLite and PostgreSQL.

var (
	centre = geo.Point{Lat: 31.2304, Lng: 121.4737} // People's Square, Shanghai
	clock  = time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
)

func newRegistry(db storage.DB) *responders.Registry {
	return &responders.Registry{DB: db, Tax: events.DefaultTaxonomy(), Now: func() time.Time { return clock }}
}

func mustCommunity(t *testing.T, reg *responders.Registry, id string) responders.Community {
	t.Helper()
	c, err := reg.CreateCommunity(context.Background(), responders.Community{ID: id, Name: "新华社区 " + id, Location: centre})
	if err != nil {
		t.Fatalf("create community %s: %v", id, err)
	}
	return c
}

// wantInvalid fails unless err is a *errdefs.ValidationError naming field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var verr *errdefs.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want a validation error on %q", err, field)
	}
	if _, ok := verr.Fields[field]; !ok {
		t.Fatalf("validation error %v does not name %q", verr, field)
	}
}

func TestCommunityStore(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)

		created, err := reg.CreateCommunity(ctx, responders.Community{ID: "xinhua", Name: "新华社区", NameEN: "Xinhua", Location: centre})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if created.Locale != "zh-CN" {
			t.Errorf("locale = %q, want the default zh-CN", created.Locale)
		}
		got, err := reg.GetCommunity(ctx, "xinhua")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		want := responders.Community{ID: "xinhua", Name: "新华社区", NameEN: "Xinhua", Location: centre, Locale: "zh-CN", CreatedAt: clock}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}

		_, err = reg.CreateCommunity(ctx, responders.Community{ID: "xinhua", Name: "another", Location: centre})
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("duplicate id: err = %v, want ErrConflict", err)
		}
		if got, _ := reg.GetCommunity(ctx, "xinhua"); got.Name != "新华社区" {
			t.Errorf("duplicate create overwrote the community: name = %q", got.Name)
		}

		if _, err := reg.GetCommunity(ctx, "nowhere"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("missing: err = %v, want ErrNotFound", err)
		}
		name := "x"
		if _, err := reg.UpdateCommunity(ctx, "nowhere", responders.CommunityPatch{Name: &name}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("update missing: err = %v, want ErrNotFound", err)
		}

		// An empty id gets a generated one that can be read back.
		anon, err := reg.CreateCommunity(ctx, responders.Community{Name: "无名社区", Location: geo.Offset(centre, 5000, 0)})
		if err != nil {
			t.Fatalf("create without id: %v", err)
		}
		if anon.ID == "" {
			t.Fatal("no id generated")
		}
		if _, err := reg.GetCommunity(ctx, anon.ID); err != nil {
			t.Errorf("get generated id %s: %v", anon.ID, err)
		}

		list, err := reg.ListCommunities(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(list) != 2 || list[0].ID > list[1].ID {
			t.Errorf("list = %+v, want both communities ordered by id", list)
		}
	})
}

func TestCommunityValidation(t *testing.T) {
	tooLong := strings.Repeat("社", 101)
	tests := []struct {
		name  string
		c     responders.Community
		field string
	}{
		{"empty name", responders.Community{ID: "ok-id", Name: " ", Location: centre}, "name"},
		{"name too long", responders.Community{ID: "ok-id", Name: tooLong, Location: centre}, "name"},
		{"id with capitals and spaces", responders.Community{ID: "Xin Hua", Name: "n", Location: centre}, "id"},
		{"id of one character", responders.Community{ID: "x", Name: "n", Location: centre}, "id"},
		{"no location fix", responders.Community{ID: "ok-id", Name: "n", Location: geo.Point{}}, "location"},
		{"latitude out of range", responders.Community{ID: "ok-id", Name: "n", Location: geo.Point{Lat: 91, Lng: 121}}, "location"},
		{"unknown locale", responders.Community{ID: "ok-id", Name: "n", Location: centre, Locale: "fr"}, "locale"},
	}
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := reg.CreateCommunity(ctx, tt.c)
				wantInvalid(t, err, tt.field)
				if _, err := reg.GetCommunity(ctx, tt.c.ID); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("an invalid community was stored (get: %v)", err)
				}
			})
		}
	})
}

func TestUpdateCommunity(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")

		moved := geo.Offset(centre, 300, 200)
		name, locale := "新华街道", "en"
		if _, err := reg.UpdateCommunity(ctx, "xinhua", responders.CommunityPatch{Name: &name, Location: &moved, Locale: &locale}); err != nil {
			t.Fatalf("update: %v", err)
		}
		got, err := reg.GetCommunity(ctx, "xinhua")
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != name || got.Location != moved || got.Locale != "en" {
			t.Errorf("after update got %+v, want name %q, location %v, locale en", got, name, moved)
		}

		bad := geo.Point{}
		_, err = reg.UpdateCommunity(ctx, "xinhua", responders.CommunityPatch{Location: &bad})
		wantInvalid(t, err, "location")
		if got, _ := reg.GetCommunity(ctx, "xinhua"); got.Location != moved {
			t.Errorf("an invalid patch changed the location to %v", got.Location)
		}
	})
}

func TestOrganisationStore(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		mustCommunity(t, reg, "huaihai")

		tests := []struct {
			name  string
			org   responders.Organisation
			field string // "" means accepted
		}{
			{"emergency center with duty phone", responders.Organisation{Community: "xinhua", Kind: responders.OrgEmergencyCenter, Name: "应急中心", DutyPhone: "+8613800000000"}, ""},
			{"emergency center without duty phone", responders.Organisation{Community: "xinhua", Kind: responders.OrgEmergencyCenter, Name: "应急中心"}, "duty_phone"},
			{"duty phone without +", responders.Organisation{Community: "xinhua", Kind: responders.OrgPropertyCompany, Name: "物业", DutyPhone: "13800000000"}, "duty_phone"},
			{"property company without duty phone", responders.Organisation{Community: "xinhua", Kind: responders.OrgPropertyCompany, Name: "物业"}, ""},
			{"unknown kind", responders.Organisation{Community: "xinhua", Kind: "fire_brigade", Name: "消防队"}, "kind"},
			{"no name", responders.Organisation{Community: "xinhua", Kind: responders.OrgVolunteerTeam}, "name"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				o, err := reg.CreateOrganisation(ctx, tt.org)
				if tt.field != "" {
					wantInvalid(t, err, tt.field)
					return
				}
				if err != nil {
					t.Fatalf("create: %v", err)
				}
				got, err := reg.GetOrganisation(ctx, "xinhua", o.ID)
				if err != nil {
					t.Fatalf("get: %v", err)
				}
				if got.Kind != tt.org.Kind || got.Name != tt.org.Name || got.DutyPhone != tt.org.DutyPhone || got.Community != "xinhua" {
					t.Errorf("stored %+v, want %+v", got, tt.org)
				}
			})
		}

		centers, err := reg.ListOrganisations(ctx, "xinhua", responders.OrgEmergencyCenter)
		if err != nil {
			t.Fatal(err)
		}
		if len(centers) != 1 || centers[0].DutyPhone != "+8613800000000" {
			t.Fatalf("emergency centers of xinhua = %+v, want the one with a duty phone", centers)
		}
		all, err := reg.ListOrganisations(ctx, "xinhua", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 {
			t.Errorf("xinhua has %d organisations, want 2 (only the valid ones)", len(all))
		}

		// Another community cannot see, or change, xinhua's emergency center.
		center := centers[0]
		if _, err := reg.GetOrganisation(ctx, "huaihai", center.ID); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("org of xinhua read via huaihai: err = %v, want ErrNotFound", err)
		}
		name := "hijacked"
		if _, err := reg.UpdateOrganisation(ctx, "huaihai", center.ID, responders.OrganisationPatch{Name: &name}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("org of xinhua updated via huaihai: err = %v, want ErrNotFound", err)
		}
		if other, _ := reg.ListOrganisations(ctx, "huaihai", ""); len(other) != 0 {
			t.Errorf("huaihai lists %d organisations of xinhua", len(other))
		}

		// The emergency center cannot lose the phone escalations go to.
		empty := ""
		_, err = reg.UpdateOrganisation(ctx, "xinhua", center.ID, responders.OrganisationPatch{DutyPhone: &empty})
		wantInvalid(t, err, "duty_phone")
		newPhone := "+8613900000000"
		if _, err := reg.UpdateOrganisation(ctx, "xinhua", center.ID, responders.OrganisationPatch{DutyPhone: &newPhone}); err != nil {
			t.Fatalf("change duty phone: %v", err)
		}
		if got, _ := reg.GetOrganisation(ctx, "xinhua", center.ID); got.DutyPhone != newPhone {
			t.Errorf("duty phone = %q, want %q", got.DutyPhone, newPhone)
		}

		_, err = reg.CreateOrganisation(ctx, responders.Organisation{Community: "nowhere", Kind: responders.OrgVolunteerTeam, Name: "队"})
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("org of a missing community: err = %v, want ErrNotFound", err)
		}
		_, err = reg.CreateOrganisation(ctx, responders.Organisation{ID: center.ID, Community: "xinhua", Kind: responders.OrgVolunteerTeam, Name: "队"})
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("duplicate org id: err = %v, want ErrConflict", err)
		}
	})
}

func medic(community, name, phone string) responders.Responder {
	return responders.Responder{
		Community: community, Name: name, Phone: phone,
		Skills:       []string{"medic"},
		Certificates: []responders.Certificate{{Skill: "medic", Name: "红十字救护员证", Number: "RC-001", ExpiresAt: time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)}},
		Location:     geo.Offset(centre, 100, 50), Available: true,
	}
}

func TestResponderPhone(t *testing.T) {
	tests := []struct {
		phone string
		ok    bool
	}{
		{"+8613800138000", true},
		{"+14155550100", true},
		{"13800138000", false},     // no country code
		{"008613800138000", false}, // 00 instead of +
		{"+0861380013800", false},  // no country code starts with 0
		{"+86 138 0013 8000", false},
		{"+86138", false}, // too short
		{"", false},
	}
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		for i, tt := range tests {
			t.Run(fmt.Sprintf("%d_%s", i, tt.phone), func(t *testing.T) {
				_, err := reg.CreateResponder(ctx, medic("xinhua", "王医生", tt.phone))
				if tt.ok {
					if err != nil {
						t.Fatalf("valid phone rejected: %v", err)
					}
					return
				}
				wantInvalid(t, err, "phone")
			})
		}
	})
}

func TestResponderStore(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		mustCommunity(t, reg, "huaihai")
		team, err := reg.CreateOrganisation(ctx, responders.Organisation{Community: "xinhua", Kind: responders.OrgVolunteerTeam, Name: "红马甲志愿队"})
		if err != nil {
			t.Fatal(err)
		}

		in := medic("xinhua", "王医生", "+8613800138000")
		in.Skills = []string{"medic", "general"}
		in.Certificates = append(in.Certificates, responders.Certificate{Skill: "firefighting", ExpiresAt: time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)})
		in.PartyMember, in.Kind, in.Team, in.Locale = true, responders.KindProfessional, team.ID, "en"
		created, err := reg.CreateResponder(ctx, in)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		got, err := reg.GetResponder(ctx, "xinhua", created.ID)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		want := in
		want.ID, want.CreatedAt, want.UpdatedAt = created.ID, clock, clock
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, want)
		}
		// The certificate's expiry is what decides whether they are sent.
		tax := events.DefaultTaxonomy()
		if !got.Qualified(tax, "medic", clock) || got.Qualified(tax, "medic", time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("medic certificate expiry lost in storage: %+v", got.Certificates)
		}

		// A responder without skills reads back as empty lists, not null.
		bare, err := reg.CreateResponder(ctx, responders.Responder{Community: "xinhua", Name: "李阿姨", Phone: "+8613800138001", Location: centre})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := reg.GetResponder(ctx, "xinhua", bare.ID); got.Skills == nil || got.Certificates == nil || got.Kind != responders.KindVolunteer || got.Locale != "zh-CN" {
			t.Errorf("bare responder = %+v, want empty skills/certificates, volunteer, zh-CN", got)
		}

		// One phone, one responder per community; another community may
		// register the same person.
		_, err = reg.CreateResponder(ctx, medic("xinhua", "王医生二号", "+8613800138000"))
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("same phone in the same community: err = %v, want ErrConflict", err)
		}
		if _, err := reg.CreateResponder(ctx, medic("huaihai", "王医生", "+8613800138000")); err != nil {
			t.Errorf("same phone in another community: %v", err)
		}
		if _, err := reg.GetResponder(ctx, "huaihai", created.ID); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("xinhua responder read via huaihai: err = %v, want ErrNotFound", err)
		}
		if _, err := reg.CreateResponder(ctx, medic("nowhere", "x", "+8613800138009")); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("responder of a missing community: err = %v, want ErrNotFound", err)
		}
		phone := "+8613800138000"
		if _, err := reg.UpdateResponder(ctx, "xinhua", bare.ID, responders.ResponderPatch{Phone: &phone}); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("patch to a taken phone: err = %v, want ErrConflict", err)
		}
	})
}

func TestResponderValidation(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*responders.Responder)
		field string
	}{
		{"no name", func(r *responders.Responder) { r.Name = "" }, "name"},
		{"unknown skill", func(r *responders.Responder) { r.Skills = []string{"juggling"} }, "skills"},
		{"certificate without expiry", func(r *responders.Responder) { r.Certificates[0].ExpiresAt = time.Time{} }, "certificates"},
		{"certificate for unknown skill", func(r *responders.Responder) { r.Certificates[0].Skill = "juggling" }, "certificates"},
		{"unknown kind", func(r *responders.Responder) { r.Kind = "hero" }, "kind"},
		{"no location fix", func(r *responders.Responder) { r.Location = geo.Point{} }, "location"},
		{"unknown locale", func(r *responders.Responder) { r.Locale = "de" }, "locale"},
		{"team that does not exist", func(r *responders.Responder) { r.Team = "org_nothere" }, "team"},
	}
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := medic("xinhua", "王医生", "+8613800138000")
				tt.edit(&r)
				_, err := reg.CreateResponder(ctx, r)
				wantInvalid(t, err, tt.field)
			})
		}
		if list, _ := reg.ListResponders(ctx, "xinhua", 0, 0); len(list) != 0 {
			t.Errorf("%d invalid responders were stored", len(list))
		}
	})
}

func TestResponderTeamMustBeOfTheCommunity(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		mustCommunity(t, reg, "huaihai")
		own, err := reg.CreateOrganisation(ctx, responders.Organisation{Community: "xinhua", Kind: responders.OrgVolunteerTeam, Name: "新华志愿队"})
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := reg.CreateOrganisation(ctx, responders.Organisation{Community: "huaihai", Kind: responders.OrgVolunteerTeam, Name: "淮海志愿队"})
		if err != nil {
			t.Fatal(err)
		}

		r := medic("xinhua", "王医生", "+8613800138000")
		r.Team = foreign.ID
		_, err = reg.CreateResponder(ctx, r)
		wantInvalid(t, err, "team")

		r.Team = own.ID
		created, err := reg.CreateResponder(ctx, r)
		if err != nil {
			t.Fatalf("team of own community: %v", err)
		}
		_, err = reg.UpdateResponder(ctx, "xinhua", created.ID, responders.ResponderPatch{Team: &foreign.ID})
		wantInvalid(t, err, "team")
		if got, _ := reg.GetResponder(ctx, "xinhua", created.ID); got.Team != own.ID {
			t.Errorf("team = %q after a rejected patch, want %q", got.Team, own.ID)
		}
	})
}

func TestUpdateResponderAvailabilityAndLocation(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		created, err := reg.CreateResponder(ctx, medic("xinhua", "王医生", "+8613800138000"))
		if err != nil {
			t.Fatal(err)
		}

		later := clock.Add(time.Hour)
		reg.Now = func() time.Time { return later }
		away, moved := false, geo.Offset(centre, -800, 400)
		if _, err := reg.UpdateResponder(ctx, "xinhua", created.ID, responders.ResponderPatch{Available: &away, Location: &moved}); err != nil {
			t.Fatalf("patch: %v", err)
		}
		got, err := reg.GetResponder(ctx, "xinhua", created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Available || got.Location != moved || !got.UpdatedAt.Equal(later) {
			t.Errorf("after patch available=%v location=%v updated=%v, want false %v %v", got.Available, got.Location, got.UpdatedAt, moved, later)
		}
		// Fields the patch does not name are kept.
		if got.Name != created.Name || got.Phone != created.Phone || !reflect.DeepEqual(got.Skills, created.Skills) ||
			!reflect.DeepEqual(got.Certificates, created.Certificates) || !got.CreatedAt.Equal(clock) {
			t.Errorf("patch changed other fields: %+v, was %+v", got, created)
		}

		back := true
		if _, err := reg.UpdateResponder(ctx, "xinhua", created.ID, responders.ResponderPatch{Available: &back}); err != nil {
			t.Fatal(err)
		}
		if got, _ := reg.GetResponder(ctx, "xinhua", created.ID); !got.Available || got.Location != moved {
			t.Errorf("back on duty: available=%v location=%v", got.Available, got.Location)
		}

		bad := "13800138000"
		_, err = reg.UpdateResponder(ctx, "xinhua", created.ID, responders.ResponderPatch{Phone: &bad})
		wantInvalid(t, err, "phone")
		if _, err := reg.UpdateResponder(ctx, "xinhua", "rs_missing", responders.ResponderPatch{Available: &back}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("patch of a missing responder: err = %v, want ErrNotFound", err)
		}
	})
}

func TestListRespondersPagesByName(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		mustCommunity(t, reg, "huaihai")
		for i, name := range []string{"Chen", "Atwood", "Bai", "Eve", "Ding"} {
			if _, err := reg.CreateResponder(ctx, medic("xinhua", name, fmt.Sprintf("+861380013800%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := reg.CreateResponder(ctx, medic("huaihai", "Aaron", "+8613900000000")); err != nil {
			t.Fatal(err)
		}

		var pages [][]string
		for offset := 0; offset < 6; offset += 2 {
			list, err := reg.ListResponders(ctx, "xinhua", 2, offset)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range list {
				names = append(names, r.Name)
			}
			pages = append(pages, names)
		}
		want := [][]string{{"Atwood", "Bai"}, {"Chen", "Ding"}, {"Eve"}}
		if !reflect.DeepEqual(pages, want) {
			t.Errorf("pages = %v, want %v", pages, want)
		}
		all, err := reg.ListResponders(ctx, "xinhua", 0, -5)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 5 {
			t.Errorf("default page has %d responders, want all 5 of xinhua", len(all))
		}
	})
}
