package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// The portable SQL dialect the stores rely on behaves the same on both
// databases: $N placeholders, upsert, RETURNING, booleans, rollback.
func TestPortableSQL(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, `INSERT INTO communities (id, name, lat, lng, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
			"c1", "阳光花园", 31.23, 121.47, int64(1000)); err != nil {
			t.Fatalf("insert: %v", err)
		}
		n, err := db.Exec(ctx, `INSERT INTO correlation_locks (community_id, type) VALUES ($1, $2)
			ON CONFLICT (community_id, type) DO UPDATE SET n = correlation_locks.n + 1`, "c1", "fire")
		if err != nil || n != 1 {
			t.Fatalf("upsert: n=%d err=%v", n, err)
		}
		var id string
		err = db.QueryRow(ctx, `INSERT INTO tokens (hash, role, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING hash`, "h", "admin", int64(1)).Scan(&id)
		if err != nil || id != "h" {
			t.Fatalf("returning: %q %v", id, err)
		}
		err = db.QueryRow(ctx, `INSERT INTO tokens (hash, role, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING hash`, "h", "admin", int64(1)).Scan(&id)
		if !errors.Is(err, storage.ErrNoRows) {
			t.Fatalf("conflicting insert: want ErrNoRows, got %v", err)
		}

		boom := errors.New("boom")
		err = db.InTx(ctx, func(q storage.Querier) error {
			if _, err := q.Exec(ctx, `UPDATE communities SET name = $1 WHERE id = $2`, "改名", "c1"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("tx error: %v", err)
		}
		var name string
		var locale string
		if err := db.QueryRow(ctx, `SELECT name, locale FROM communities WHERE id = $1`, "c1").Scan(&name, &locale); err != nil {
			t.Fatal(err)
		}
		if name != "阳光花园" || locale != "zh-CN" {
			t.Fatalf("rollback lost: name=%q locale=%q", name, locale)
		}

		if _, err := db.Exec(ctx, `INSERT INTO responders (id, community_id, name, phone, lat, lng, available, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, "r1", "c1", "王芳", "+8613800000001", 31.23, 121.47, false, int64(1)); err != nil {
			t.Fatal(err)
		}
		var avail bool
		if err := db.QueryRow(ctx, `SELECT available FROM responders WHERE id = $1 AND available = false`, "r1").Scan(&avail); err != nil || avail {
			t.Fatalf("bool round trip: %v %v", avail, err)
		}
		if err := db.QueryRow(ctx, `SELECT name FROM communities WHERE id = $1`, "nope").Scan(&name); !errors.Is(err, storage.ErrNoRows) {
			t.Fatalf("missing row: want ErrNoRows, got %v", err)
		}
	})
}

// Migrating twice is a no-op, so every replica may run migrate at start.
func TestMigrateTwice(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		if err := storage.Migrate(context.Background(), db); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
	})
}

func TestPlaceholders(t *testing.T) {
	if got := storage.Marks(1, 3); got != "$1, $2, $3" {
		t.Errorf("Marks(1, 3) = %q", got)
	}
	if got := storage.Marks(4, 1); got != "$4" {
		t.Errorf("Marks(4, 1) = %q", got)
	}
	if got := storage.Tuples(2, 3); got != "($1, $2, $3), ($4, $5, $6)" {
		t.Errorf("Tuples(2, 3) = %q", got)
	}
}
