package accounts_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/accounts"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// A stored password is an argon2id PHC string that only the right password
// matches; the same password twice gives two different strings (salt).
func TestPasswordHash(t *testing.T) {
	h1, err := accounts.HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := accounts.HashPassword("correct horse battery")
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=65536,t=1,p=2$") || strings.Count(h1, "$") != 5 || h1 == h2 {
		t.Fatalf("hashes %q and %q: want two salted argon2id PHC strings", h1, h2)
	}
	if ok, err := accounts.CheckPassword(h1, "correct horse battery"); !ok || err != nil {
		t.Fatalf("the right password: %v %v", ok, err)
	}
	for _, wrong := range []string{"correct horse batter", "Correct horse battery", ""} {
		if ok, err := accounts.CheckPassword(h1, wrong); ok || err != nil {
			t.Errorf("password %q matched (%v)", wrong, err)
		}
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA", "$argon2id$v=19$m=65536,t=0,p=2$c2FsdA$aGFzaA",
		strings.Replace(h1, "v=19", "v=16", 1), strings.Replace(h1, "m=65536", "m=4194304", 1)} {
		if _, err := accounts.CheckPassword(bad, "x"); err == nil {
			t.Errorf("hash %q accepted", bad)
		}
	}
}

// Five failures lock a key; it may try again one minute later, once; a
// success forgets the failures; other keys are not affected.
func TestThrottle(t *testing.T) {
	th := accounts.NewThrottle(5, 5*time.Minute)
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		if w := th.Wait("li|1.2.3.4", now); w != 0 {
			t.Fatalf("failure %d: must wait %v already", i+1, w)
		}
		th.Fail("li|1.2.3.4", now)
	}
	if w := th.Wait("li|1.2.3.4", now); w < 59*time.Second || w > time.Minute {
		t.Fatalf("after 5 failures: wait %v, want about a minute", w)
	}
	if w := th.Wait("wang|1.2.3.4", now); w != 0 {
		t.Fatalf("another username waits %v", w)
	}
	later := now.Add(time.Minute)
	if w := th.Wait("li|1.2.3.4", later); w != 0 {
		t.Fatalf("a minute later: wait %v", w)
	}
	th.Fail("li|1.2.3.4", later)
	if w := th.Wait("li|1.2.3.4", later); w == 0 {
		t.Fatal("a sixth failure a minute later must lock again")
	}
	th.Forget("li|1.2.3.4")
	if w := th.Wait("li|1.2.3.4", later); w != 0 {
		t.Fatalf("after a success: wait %v", w)
	}
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newAccounts(t *testing.T, db storage.DB, c *clock) *accounts.Accounts {
	t.Helper()
	reg := &responders.Registry{DB: db, Tax: events.DefaultTaxonomy(), Now: c.Now}
	ctx := context.Background()
	if _, err := reg.CreateCommunity(ctx, responders.Community{ID: "c1", Name: "新华社区", Location: geo.Point{Lat: 31.23, Lng: 121.47}}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateOrganisation(ctx, responders.Organisation{ID: "property", Community: "c1", Kind: responders.OrgPropertyCompany,
		Name: "物业"}); err != nil {
		t.Fatal(err)
	}
	return &accounts.Accounts{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.Now}
}

// Users: the rules a new user must meet, case-insensitive usernames, and
// the one answer for an unknown user and a wrong password.
func TestUsers(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		c := &clock{time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
		acc := newAccounts(t, db, c)

		u, err := acc.CreateUser(ctx, accounts.NewUser{Username: " Wang.Li ", Password: "长长的密码也可以用的哦", Role: accounts.RoleDispatcher,
			Community: "c1", Name: "王丽"}, "admin:bootstrap")
		if err != nil {
			t.Fatal(err)
		}
		if u.Username != "wang.li" || u.Subject != "wang.li" || u.Community != "c1" {
			t.Fatalf("user %+v: want username and subject wang.li", u)
		}
		_, err = acc.CreateUser(ctx, accounts.NewUser{Username: "WANG.LI", Password: "another password", Role: accounts.RoleAdmin}, "x")
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Fatalf("the same username in capitals: %v, want conflict", err)
		}
		for _, tc := range []struct {
			u     accounts.NewUser
			field string
		}{
			{accounts.NewUser{Username: "a", Password: "long enough pw", Role: "admin"}, "username"},
			{accounts.NewUser{Username: "张三", Password: "long enough pw", Role: "admin"}, "username"},
			{accounts.NewUser{Username: "short", Password: "九个字的密码密码密", Role: "admin"}, "password"},
			{accounts.NewUser{Username: "root", Password: "long enough pw", Role: "resident", Community: "c1"}, "role"},
			{accounts.NewUser{Username: "root", Password: "long enough pw", Role: "admin", Community: "c1"}, "community"},
			{accounts.NewUser{Username: "disp2", Password: "long enough pw", Role: "dispatcher"}, "community"},
			{accounts.NewUser{Username: "disp2", Password: "long enough pw", Role: "dispatcher", Community: "nowhere"}, "community"},
			{accounts.NewUser{Username: "org2", Password: "long enough pw", Role: "org", Community: "c1"}, "subject"},
			{accounts.NewUser{Username: "org2", Password: "long enough pw", Role: "org", Community: "c1", Subject: "owners"}, "subject"},
			{accounts.NewUser{Username: "org2", Password: "long enough pw", Role: "org", Community: "c1", Subject: "property",
				Name: "a\nb"}, "name"},
		} {
			_, err := acc.CreateUser(ctx, tc.u, "x")
			var verr *errdefs.ValidationError
			if !errors.As(err, &verr) || verr.Fields[tc.field] == "" {
				t.Errorf("user %+v: %v, want a problem with %s", tc.u, err, tc.field)
			}
		}
		if _, err := acc.CreateUser(ctx, accounts.NewUser{Username: "wuye", Password: "long enough pw", Role: "org", Community: "c1",
			Subject: "property"}, "x"); err != nil {
			t.Fatalf("an org user of an organisation that exists: %v", err)
		}

		s, token, err := acc.SignIn(ctx, "WANG.li", "长长的密码也可以用的哦")
		if err != nil || s.Role != "dispatcher" || s.Community != "c1" || s.Subject != "wang.li" || s.Name != "王丽" || s.CSRF == "" {
			t.Fatalf("sign in: %+v %v", s, err)
		}
		if token == "" || token == s.CSRF {
			t.Fatalf("cookie %q and csrf %q must be two secrets", token, s.CSRF)
		}
		for _, bad := range [][2]string{{"wang.li", "长长的密码也可以用的"}, {"nobody", "长长的密码也可以用的哦"}, {"", ""}} {
			if _, _, err := acc.SignIn(ctx, bad[0], bad[1]); !errors.Is(err, accounts.ErrBadCredentials) {
				t.Errorf("sign in as %q: %v, want ErrBadCredentials", bad[0], err)
			}
		}
	})
}

// A session lives 12 hours since it was last used (a month for residents),
// is extended only when half of that is gone, and an expired one is
// deleted when it is next seen.
func TestSessions(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		start := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
		c := &clock{start}
		acc := newAccounts(t, db, c)
		if _, err := acc.CreateUser(ctx, accounts.NewUser{Username: "disp1", Password: "long enough pw", Role: "dispatcher", Community: "c1"}, "x"); err != nil {
			t.Fatal(err)
		}
		s, token, err := acc.SignIn(ctx, "disp1", "long enough pw")
		if err != nil || !s.ExpiresAt.Equal(start.Add(12*time.Hour)) {
			t.Fatalf("sign in: %+v %v", s, err)
		}

		c.now = start.Add(5 * time.Hour)
		got, renewed, err := acc.Session(ctx, token)
		if err != nil || renewed || got.CSRF != s.CSRF || !got.ExpiresAt.Equal(s.ExpiresAt) {
			t.Fatalf("after 5 h: %+v renewed=%v %v, want the same session, not renewed", got, renewed, err)
		}
		c.now = start.Add(7 * time.Hour)
		got, renewed, err = acc.Session(ctx, token)
		if err != nil || !renewed || !got.ExpiresAt.Equal(c.now.Add(12*time.Hour)) {
			t.Fatalf("after 7 h: %+v renewed=%v %v, want renewed for 12 h", got, renewed, err)
		}
		c.now = c.now.Add(12 * time.Hour)
		if _, _, err := acc.Session(ctx, token); !errors.Is(err, accounts.ErrNoSession) {
			t.Fatalf("12 h unused: %v, want ErrNoSession", err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM sessions`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d sessions left (%v), want the expired one deleted", n, err)
		}

		_, token, err = acc.SignIn(ctx, "disp1", "long enough pw")
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.SignOut(ctx, token); err != nil {
			t.Fatal(err)
		}
		if _, _, err := acc.Session(ctx, token); !errors.Is(err, accounts.ErrNoSession) {
			t.Fatalf("after signing out: %v", err)
		}
		for _, bad := range []string{"", "x", strings.Repeat("a", 200)} {
			if _, _, err := acc.Session(ctx, bad); !errors.Is(err, accounts.ErrNoSession) {
				t.Errorf("cookie %q: %v", bad, err)
			}
		}
	})
}
