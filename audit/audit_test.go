package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// An auditor reads back what was recorded, page by page; a change that
// rolled back left no entry; and nobody, not even someone with the
// database's own connection, can rewrite or erase an entry.
func TestAuditLogIsAppendOnly(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
		for i, e := range []audit.Entry{
			{Actor: "dispatcher:c1:", Community: "c1", Action: "responder.create", ObjectKind: "responder", ObjectID: "r1",
				Detail: map[string]any{"phone": "+86138****0001"}},
			{Actor: "admin::bootstrap", Action: "plan.create", ObjectKind: "plan", ObjectID: "fire"},
			{Actor: "dispatcher:c2:", Community: "c2", Action: "incident.resolve", ObjectKind: "incident", ObjectID: "in1"},
		} {
			e.At = at.Add(time.Duration(i) * time.Minute)
			if err := audit.Record(ctx, db, e); err != nil {
				t.Fatal(err)
			}
		}
		boom := errors.New("refused")
		err := db.InTx(ctx, func(q storage.Querier) error {
			if err := audit.Record(ctx, q, audit.Entry{Actor: "x", Action: "responder.update", ObjectKind: "responder", At: at}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("tx: %v", err)
		}

		first, more, err := audit.List(ctx, db, audit.Filter{Limit: 2})
		if err != nil || !more || len(first) != 2 {
			t.Fatalf("first page: %d entries, more=%v, err=%v", len(first), more, err)
		}
		rest, more, err := audit.List(ctx, db, audit.Filter{After: first[1].ID, Limit: 2})
		if err != nil || more || len(rest) != 1 {
			t.Fatalf("second page: %d entries, more=%v, err=%v", len(rest), more, err)
		}
		all := append(first, rest...)
		var got []string
		for _, e := range all {
			got = append(got, e.Actor+" "+e.Action+" "+e.ObjectID+" "+e.At.Format("15:04"))
		}
		want := "dispatcher:c1: responder.create r1 08:00|admin::bootstrap plan.create fire 08:01|dispatcher:c2: incident.resolve in1 08:02"
		if strings.Join(got, "|") != want {
			t.Fatalf("log reads\n%s\nwant\n%s", strings.Join(got, "|"), want)
		}
		if all[0].Detail["phone"] != "+86138****0001" {
			t.Fatalf("detail lost: %v", all[0].Detail)
		}
		c1, _, err := audit.List(ctx, db, audit.Filter{Community: "c1"})
		if err != nil || len(c1) != 1 || c1[0].ObjectID != "r1" {
			t.Fatalf("community filter: %+v %v", c1, err)
		}

		refused := []string{
			`UPDATE audit_log SET actor = 'nobody'`,
			`DELETE FROM audit_log WHERE object_id = 'r1'`,
		}
		if db.Dialect() == "postgres" {
			refused = append(refused, `TRUNCATE audit_log`)
		}
		for _, sql := range refused {
			if _, err := db.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: want refused as append-only, got %v", sql, err)
			}
		}
		after, _, err := audit.List(ctx, db, audit.Filter{})
		if err != nil || len(after) != 3 || after[0].Actor != "dispatcher:c1:" {
			t.Fatalf("entries changed after refused statements: %+v %v", after, err)
		}
	})
}
