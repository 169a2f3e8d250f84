package responders_test

import (
	"context"
	"testing"

	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// An id a client chooses for a new responder, organisation or resident is
// a slug like a community's: ids travel in URLs, logs and texts. Without
// one, the registry makes one.
func TestChosenIDsAreSlugs(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "c1")
		for _, id := range []string{"'; DROP TABLE responders;--", "1 OR 1=1", "R1", "a/b", "-x", "r1\x00"} {
			r := medic("c1", "李四", "+8613800000009")
			r.ID = id
			_, err := reg.CreateResponder(ctx, r)
			wantInvalid(t, err, "id")
			_, err = reg.CreateOrganisation(ctx, responders.Organisation{ID: id, Community: "c1", Kind: responders.OrgPropertyCompany, Name: "物业"})
			wantInvalid(t, err, "id")
			_, err = reg.CreateResident(ctx, responders.Resident{ID: id, Community: "c1", Name: "张三"})
			wantInvalid(t, err, "id")
		}
		r := medic("c1", "李四", "+8613800000009")
		r.ID = "x" // one character will do
		if _, err := reg.CreateResponder(ctx, r); err != nil {
			t.Fatalf("a slug id was refused: %v", err)
		}
		made, err := reg.CreateResponder(ctx, medic("c1", "王五", "+8613800000010"))
		if err != nil || made.ID == "" {
			t.Fatalf("no id given: %+v, %v", made, err)
		}
		list, err := reg.ListResponders(ctx, "c1", 0, 0)
		if err != nil || len(list) != 2 {
			t.Fatalf("responders after refused ids: %d, %v", len(list), err)
		}
	})
}
