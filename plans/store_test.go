package plans

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// Two replicas each keep their own parsed plans: a plan an admin saves on
// one must be the plan the other runs for its next incident.
func TestLatestSeesAPlanSavedOnAnotherReplica(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		tax := events.DefaultTaxonomy()
		a := &Store{DB: db, Tax: tax, Now: time.Now, Parsed: NewParseCache()}
		b := &Store{DB: db, Tax: tax, Now: time.Now, Parsed: NewParseCache()}
		v1, err := Parse(tax, []byte(goodPlan))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Save(ctx, v1, "admin"); err != nil {
			t.Fatal(err)
		}
		pick := func() Plan {
			t.Helper()
			all, err := a.Latest(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			p, ok := Pick(all, "c1", "gas_leak", 3)
			if !ok {
				t.Fatal("no plan for a gas leak in c1")
			}
			return p
		}
		if p := pick(); p.Version != 1 || len(p.Steps) != 4 {
			t.Fatalf("first read: version %d with %d steps, want version 1 with 4", p.Version, len(p.Steps))
		}
		if p := pick(); p.Version != 1 || len(p.Steps) != 4 { // now from the cache
			t.Fatalf("second read: version %d with %d steps, want version 1 with 4", p.Version, len(p.Steps))
		}

		// The admin drops the elderly check on replica b.
		doc := goodPlan[:strings.Index(goodPlan, "  - id: check_elderly")]
		v2, err := Parse(tax, []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Save(ctx, v2, "admin"); err != nil {
			t.Fatal(err)
		}
		if p := pick(); p.Version != 2 || len(p.Steps) != 3 {
			t.Errorf("after the edit on the other replica: version %d with %d steps, want version 2 with 3", p.Version, len(p.Steps))
		}
	})
}
