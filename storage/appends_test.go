package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

var testOutbox = &storage.Appender{Insert: `INSERT INTO event_outbox (id, subject, data, not_before, created_at)`, Cols: 5,
	Then: `ON CONFLICT (id) DO NOTHING`}

var testLinks = &storage.Appender{Insert: `INSERT INTO links (hash, kind, target, community_id, locale, created_at, expires_at)`, Cols: 7}

// wrapped is a handler's own transaction type around the one InTx gives.
type wrapped struct{ storage.Querier }

func (w wrapped) Unwrap() storage.Querier { return w.Querier }

func outboxIDs(t *testing.T, db storage.DB) []string {
	t.Helper()
	return storagetest.Strings(t, db, `SELECT id FROM event_outbox ORDER BY created_at, id`)
}

// Rows appended in a transaction are all there after the commit, past
// one statement's worth, with the Appender's ON CONFLICT applied, however
// the transaction's Querier was wrapped.
func TestAppendedRowsCommitWithTheirTransaction(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		err := db.InTx(ctx, func(q storage.Querier) error {
			for i := range 250 {
				var via storage.Querier = q
				switch i % 3 {
				case 1:
					via = wrapped{q}
				case 2:
					via = storage.Within(q, db.Dialect())
				}
				if err := storage.Append(ctx, via, testOutbox, fmt.Sprintf("m%03d", i), "s", "{}", 0, int64(i)); err != nil {
					return err
				}
			}
			// A repeat is absorbed by ON CONFLICT, as a redelivery's is.
			return storage.Append(ctx, q, testOutbox, "m007", "s", "{}", 0, int64(7))
		})
		if err != nil {
			t.Fatal(err)
		}
		ids := outboxIDs(t, db)
		if len(ids) != 250 || ids[0] != "m000" || ids[249] != "m249" {
			t.Fatalf("got %d rows (%v … %v), want m000 … m249", len(ids), ids[:min(3, len(ids))], ids[max(0, len(ids)-3):])
		}
	})
}

// A transaction that fails keeps none of its appended rows, and a held
// insert that fails fails its transaction, with the other writes.
func TestAppendedRowsFailWithTheirTransaction(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := db.InTx(ctx, func(q storage.Querier) error {
			if err := storage.Append(ctx, q, testOutbox, "lost", "s", "{}", 0, int64(1)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("want boom, got %v", err)
		}

		if err := storage.Append(ctx, db, testLinks, "h1", "offer", "of_1", "c1", "zh-CN", int64(1), int64(2)); err != nil {
			t.Fatalf("append outside a transaction: %v", err)
		}
		err = db.InTx(ctx, func(q storage.Querier) error {
			if err := storage.Append(ctx, q, testOutbox, "also-lost", "s", "{}", 0, int64(2)); err != nil {
				return err
			}
			// links has no ON CONFLICT: the same hash again is an error,
			// but only when the held rows go in.
			return storage.Append(ctx, q, testLinks, "h1", "offer", "of_2", "c1", "zh-CN", int64(1), int64(2))
		})
		if err == nil || !strings.Contains(err.Error(), "INSERT INTO links") {
			t.Fatalf("want the links insert's error, got %v", err)
		}
		if ids := outboxIDs(t, db); len(ids) != 0 {
			t.Fatalf("rows of failed transactions kept: %v", ids)
		}
		var target string
		if err := db.QueryRow(ctx, `SELECT target FROM links WHERE hash = $1`, "h1").Scan(&target); err != nil || target != "of_1" {
			t.Fatalf("link appended outside a transaction: %q %v", target, err)
		}

		if err := storage.Append(ctx, db, testLinks, "h2"); err == nil {
			t.Fatal("a row with too few values was accepted")
		}
	})
}
