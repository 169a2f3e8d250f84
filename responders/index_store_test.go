package responders

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// indexed is a registry whose writes reach a match index, on a real store.
type indexed struct {
	t      *testing.T
	db     storage.DB
	reg    *Registry
	keeper *IndexKeeper
	now    time.Time
	centre geo.Point
}

func newIndexed(t *testing.T, db storage.DB, conn *events.Bus, origin string) *indexed {
	t.Helper()
	tax := events.DefaultTaxonomy()
	x, err := NewIndex(tax)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
	k := &IndexKeeper{Index: x, DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now },
		Origin: origin}
	if conn != nil {
		k.Conn = conn.Conn()
	}
	return &indexed{t: t, db: db, reg: &Registry{DB: db, Tax: tax, Now: func() time.Time { return now }, Keeper: k}, keeper: k,
		now: now, centre: geo.Point{Lat: 31.2304, Lng: 121.4737}}
}

// medic registers a certified medic northM metres north of the centre.
func (h *indexed) medic(community string, n int, northM float64) Responder {
	h.t.Helper()
	r, err := h.reg.CreateResponder(context.Background(), Responder{Community: community, Name: fmt.Sprint("医生", n),
		Phone: fmt.Sprintf("+86138%08d", n), Skills: []string{"medic"}, Available: true, Location: geo.Offset(h.centre, northM, 0),
		Certificates: []Certificate{{Skill: "medic", ExpiresAt: h.now.AddDate(1, 0, 0)}}})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// pick asks the index for a wave, in a transaction as dispatch does.
func (h *indexed) pick(community string, limit int, asked map[string]bool) ([]string, bool) {
	h.t.Helper()
	var ids []string
	var ok bool
	err := h.db.InTx(context.Background(), func(q storage.Querier) error {
		got, found, err := h.keeper.Index.pick(context.Background(), q, h.reg.Tax, Query{Community: community, At: h.centre,
			RadiusM: 1000, Skills: []string{"medic"}, Now: h.now, Exclude: asked, Limit: limit})
		for _, c := range got {
			ids = append(ids, c.Responder.ID)
		}
		ok = found
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return ids, ok
}

func TestIndexedPickNeverOffersWhomTheDatabaseSaysNot(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		h := newIndexed(t, db, nil, "replica-a")
		if _, err := h.reg.CreateCommunity(ctx, Community{ID: "xinhua", Name: "新华社区", Location: h.centre}); err != nil {
			t.Fatal(err)
		}
		var m []Responder
		for i := range 6 {
			m = append(m, h.medic("xinhua", i, float64(100*(i+1))))
		}
		if got, ok := h.pick("xinhua", 3, nil); ok {
			t.Fatalf("before the index is loaded, dispatch must use SQL; the index answered %v", got)
		}
		if err := h.keeper.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if got, ok := h.pick("xinhua", 3, nil); !ok || fmt.Sprint(got) != fmt.Sprint([]string{m[0].ID, m[1].ID, m[2].ID}) {
			t.Fatalf("the three nearest medics: got %v (ok %v)", got, ok)
		}

		// Behind the index's back: the nearest is busy with another
		// incident, the second has gone off call. The index still
		// believes in them; the database does not.
		if _, err := db.Exec(ctx, `UPDATE responders SET busy_incident = 'in_other' WHERE id = $1`, m[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `UPDATE responders SET available = false WHERE id = $1`, m[1].ID); err != nil {
			t.Fatal(err)
		}
		if got, ok := h.pick("xinhua", 3, nil); !ok || fmt.Sprint(got) != fmt.Sprint([]string{m[2].ID, m[3].ID, m[4].ID}) {
			t.Fatalf("a busy or off-call medic was offered, or the wave not filled: got %v (ok %v)", got, ok)
		}
		// Four are left; asking for five, the index cannot fill the wave
		// and says so, and dispatch asks SQL.
		if got, ok := h.pick("xinhua", 5, nil); ok {
			t.Fatalf("the index claimed a wave of 5 from 4 free medics: %v", got)
		}
		// Those asked before are not asked again.
		if got, _ := h.pick("xinhua", 2, map[string]bool{m[2].ID: true}); fmt.Sprint(got) != fmt.Sprint([]string{m[3].ID, m[4].ID}) {
			t.Fatalf("asked before yet offered again: %v", got)
		}

		// A write through the registry reaches the index at once: the
		// new nearest medic is offered first; one who goes off call is not.
		nearest := h.medic("xinhua", 10, 10)
		off := false
		if _, err := h.reg.UpdateResponder(ctx, "xinhua", m[2].ID, ResponderPatch{Available: &off}); err != nil {
			t.Fatal(err)
		}
		if got, ok := h.pick("xinhua", 2, nil); !ok || fmt.Sprint(got) != fmt.Sprint([]string{nearest.ID, m[3].ID}) {
			t.Fatalf("after a registration and an update: got %v (ok %v)", got, ok)
		}
	})
}

// TestIndexFollowsOtherReplicas: a medic registered on one replica is
// proposed by the other's index, through the announcement or, when that
// is lost, the reconciliation.
func TestIndexFollowsOtherReplicas(t *testing.T) {
	db := storagetest.SQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bus, err := events.Connect(ctx, events.BusConfig{StoreDir: t.TempDir(), Replicas: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	a := newIndexed(t, db, bus, "replica-a")
	b := newIndexed(t, db, bus, "replica-b")
	b.keeper.Every = time.Hour // only the first load and the announcements
	if _, err := a.reg.CreateCommunity(ctx, Community{ID: "xinhua", Name: "新华社区", Location: a.centre}); err != nil {
		t.Fatal(err)
	}
	if err := a.keeper.Load(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); b.keeper.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "replica b's index to load", func() bool { return b.keeper.Index.Loaded() })

	m := a.medic("xinhua", 1, 100)
	waitFor(t, "replica b to learn of the medic registered on replica a", func() bool {
		got, ok := b.pick("xinhua", 1, nil)
		return ok && len(got) == 1 && got[0] == m.ID
	})
	off := false
	if _, err := a.reg.UpdateResponder(ctx, "xinhua", m.ID, ResponderPatch{Available: &off}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica b to drop the medic who went off call on replica a", func() bool {
		return b.keeper.Index.Len() == 0
	})

	// A change nobody announced (the roster CLI writes to the database
	// directly) is found by reconciliation.
	if _, err := db.Exec(ctx, `UPDATE responders SET available = true, updated_at = $2 WHERE id = $1`, m.ID,
		a.now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if err := b.keeper.Reconcile(ctx, a.now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, ok := b.pick("xinhua", 1, nil); !ok || len(got) != 1 || got[0] != m.ID {
		t.Fatalf("after reconciliation: got %v (ok %v)", got, ok)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
