package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTestSQLite(t *testing.T) *sqliteDB {
	t.Helper()
	ctx := context.Background()
	db, err := openSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return db
}

// A statement seen once is prepared in the background and then served
// from the cache, inside and outside transactions, with the same results.
func TestSQLiteReusesPreparedStatements(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	insert := `INSERT INTO correlation_locks (community_id, type, n) VALUES ($1, $2, $3)`
	count := `SELECT COUNT(*) FROM correlation_locks WHERE community_id = $1`
	if _, err := db.Exec(ctx, insert, "c1", "fire", 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for db.stmts.get(insert) == nil || db.stmts.get(count) == nil {
		if time.Now().After(deadline) {
			t.Fatal("statements not prepared within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 5 {
		err := db.InTx(ctx, func(q Querier) error {
			_, err := q.Exec(ctx, insert, "c1", fmt.Sprint("t", i), i)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow(ctx, count, "c1").Scan(&n); err != nil || n != 6 {
		t.Fatalf("count = %d, %v; want 6", n, err)
	}
	// A prepared statement still reports its own errors.
	if _, err := db.Exec(ctx, insert, "c1", "fire", 1); !IsUniqueViolation(err) {
		t.Fatalf("duplicate insert: %v, want a unique violation", err)
	}
}

// More transactions than connections, each running statements never seen
// before: preparing must not wait for a connection a transaction holds.
func TestSQLiteStatementCacheDoesNotStarveThePool(t *testing.T) {
	db := openTestSQLite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			errs <- db.InTx(ctx, func(q Querier) error {
				for j := range 4 {
					// A different text each: a cache miss every time.
					sql := fmt.Sprintf(`INSERT INTO correlation_locks (community_id, type, n) VALUES ($1, $2, %d)`, i*10+j)
					if _, err := q.Exec(ctx, sql, fmt.Sprint("c", i), fmt.Sprint("t", j)); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM correlation_locks`).Scan(&n); err != nil || n != 128 {
		t.Fatalf("rows = %d, %v; want 128", n, err)
	}
}

// Transactions committed together keep their own outcomes: one that fails
// leaves nothing behind, the others commit, and a panic reaches the
// goroutine that raised it.
func TestSQLiteGroupedTransactionsKeepTheirOwnOutcome(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	boom := errors.New("boom")
	const n = 60
	var wg sync.WaitGroup
	errs := make([]error, n)
	panics := make([]any, n)
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			errs[i] = db.InTx(ctx, func(q Querier) error {
				if _, err := q.Exec(ctx, `INSERT INTO correlation_locks (community_id, type, n) VALUES ($1, 'fire', 1)`, fmt.Sprint("c", i)); err != nil {
					return err
				}
				if _, err := q.Exec(ctx, `INSERT INTO correlation_locks (community_id, type, n) VALUES ($1, 'flood', 1)`, fmt.Sprint("c", i)); err != nil {
					return err
				}
				switch i % 10 {
				case 3:
					return boom
				case 7:
					panic(fmt.Sprint("panic ", i))
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i := range n {
		var rows int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM correlation_locks WHERE community_id = $1`, fmt.Sprint("c", i)).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		switch i % 10 {
		case 3:
			if !errors.Is(errs[i], boom) || rows != 0 {
				t.Errorf("tx %d: err %v, %d rows; want boom and nothing written", i, errs[i], rows)
			}
		case 7:
			if panics[i] != fmt.Sprint("panic ", i) || rows != 0 {
				t.Errorf("tx %d: panic %v, %d rows; want its own panic and nothing written", i, panics[i], rows)
			}
		default:
			if errs[i] != nil || panics[i] != nil || rows != 2 {
				t.Errorf("tx %d: err %v, panic %v, %d rows; want both rows committed", i, errs[i], panics[i], rows)
			}
		}
	}
}

// A caller that gives up while waiting for its turn is not run later.
func TestSQLiteWriteGivenUpIsNotRun(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	hold := make(chan struct{})
	started := make(chan struct{})
	go db.InTx(ctx, func(q Querier) error {
		close(started)
		<-hold // keeps the writer busy
		return nil
	})
	<-started
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := db.InTx(short, func(q Querier) error {
		_, err := q.Exec(ctx, `INSERT INTO correlation_locks (community_id, type, n) VALUES ('late', 'fire', 1)`)
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("InTx = %v, want the deadline", err)
	}
	close(hold)
	if _, err := db.Exec(ctx, `INSERT INTO correlation_locks (community_id, type, n) VALUES ('after', 'fire', 1)`); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM correlation_locks WHERE community_id = 'late'`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("late rows = %d, %v; want the abandoned transaction never run", rows, err)
	}
}

// Committed pages reach the database file soon after the commits, copied
// by the checkpointer rather than by the writer (whose own checkpoint
// waits for a log of walFallbackPages).
func TestSQLiteCheckpointsInTheBackground(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := openSQLite(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "shouwang.db")
	size := func() int64 {
		fi, err := os.Stat(main)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Wait out the checkpoint of the migrations, so the file's size is
	// only what the rows below add.
	before := size()
	for stable := 0; stable < 3; {
		time.Sleep(3 * checkpointEvery)
		if now := size(); now == before {
			stable++
		} else {
			before, stable = now, 0
		}
	}
	// About 400 pages of rows: well short of the writer's own checkpoint.
	pad := strings.Repeat("x", 1000)
	for i := range 40 {
		err := db.InTx(ctx, func(q Querier) error {
			for j := range 40 {
				if _, err := q.Exec(ctx, `INSERT INTO correlation_locks (community_id, type, n) VALUES ($1, $2, 1)`,
					fmt.Sprint(pad, i, "-", j), "fire"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() < before+1_000_000 {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes, %d before the writes: the log was not checkpointed within 10 s", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM correlation_locks`).Scan(&n); err != nil || n != 1600 {
		t.Fatalf("rows = %d, %v; want 1600", n, err)
	}
}
