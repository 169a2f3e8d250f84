package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

type sqliteDB struct {
	db    *sql.DB
	stmts *stmtCache
	// writes feeds the writer goroutine (sqlitewriter.go); closed ends
	// it, and writerDone says it has ended.
	writes     chan *writeReq
	closed     chan struct{}
	writerDone chan struct{}
	// committed wakes the checkpointer (sqlitecheckpoint.go), which
	// closes checkpointerDone when it has ended.
	committed        chan struct{}
	checkpointerDone chan struct{}
	closeOnce        sync.Once
}

// isRead reports whether q only reads, so it need not wait for the
// writer: WAL readers never block.
func isRead(q string) bool {
	q = strings.TrimLeft(q, " \t\r\n(")
	return len(q) >= 6 && strings.EqualFold(q[:6], "select")
}

// stmtCache keeps statements prepared: modernc's driver otherwise parses
// and plans every statement on every call, which was 16 % of the process's
// CPU under load (issue 8). database/sql prepares a cached statement once
// per connection and reuses it, in transactions too.
//
// A statement is prepared in the background the first time it is seen, and
// runs unprepared until then: preparing needs a free connection, and a
// transaction waiting for one while holding its own could starve the pool.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt // nil value: being prepared
	// preparing counts background prepares, which close waits for: one
	// still opening a connection after Close would recreate the WAL files
	// in a directory being removed.
	preparing sync.WaitGroup
}

// maxCachedStmts bounds the cache: statements built with a varying number
// of placeholders (IN lists) beyond it are run unprepared.
const maxCachedStmts = 512

func (c *stmtCache) get(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		return nil // closed
	}
	if st, ok := c.m[q]; ok || len(c.m) >= maxCachedStmts {
		return st
	}
	c.m[q] = nil
	c.preparing.Add(1)
	go c.prepare(q)
	return nil
}

func (c *stmtCache) prepare(q string) {
	defer c.preparing.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.db.PrepareContext(ctx, q)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.m == nil: // closed meanwhile
		if err == nil {
			st.Close()
		}
	case err != nil:
		// Keep running it unprepared; its own error reaches its caller.
		// Not retried: a statement that cannot be prepared is a bug or
		// a schema not migrated yet, and neither is worth a retry loop.
	default:
		c.m[q] = st
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	m := c.m
	c.m = nil // from now on, prepares close what they made
	c.mu.Unlock()
	c.preparing.Wait()
	for _, st := range m {
		if st != nil {
			st.Close()
		}
	}
}

func openSQLite(ctx context.Context, dataDir string) (*sqliteDB, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return openSQLiteFile(ctx, filepath.Join(dataDir, "shouwang.db"))
}

func openSQLiteFile(ctx context.Context, path string) (*sqliteDB, error) {
	// synchronous=FULL: an alarm committed here must survive a power cut.
	// _txlock=immediate: write transactions take the lock at BEGIN, and
	// busy_timeout makes writers of other processes (the CLI) queue
	// instead of failing; this process's own writers queue in writeLoop.
	// wal_autocheckpoint: a goroutine of its own checkpoints; the writer
	// only past the fallback (sqlitecheckpoint.go).
	// temp_store=MEMORY: every grouped transaction runs in a savepoint,
	// and SQLite wrote the savepoint's undo pages to a temporary file:
	// at 150 alarms/s, 60 % of the writer's pwrite calls (issue 8).
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)&_txlock=immediate" +
		fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", walFallbackPages)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Every connection stays open: database/sql keeps only two idle by
	// default, and a connection opened again under load runs its pragmas
	// and prepares every cached statement anew (a profile at 200 alarms/s
	// showed 13 % of the CPU there).
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	d := &sqliteDB{db: db, stmts: &stmtCache{db: db, m: map[string]*sql.Stmt{}},
		writes: make(chan *writeReq), closed: make(chan struct{}), writerDone: make(chan struct{}),
		committed: make(chan struct{}, 1), checkpointerDone: make(chan struct{})}
	go d.writeLoop()
	go d.checkpointLoop()
	return d, nil
}

func (d *sqliteDB) Dialect() string { return "sqlite" }
func (d *sqliteDB) Close() {
	d.closeOnce.Do(func() {
		close(d.closed)
		<-d.writerDone
		<-d.checkpointerDone
		d.stmts.close()
		d.db.Close()
	})
}

func (d *sqliteDB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

func (d *sqliteDB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := d.write(ctx, func(tx Querier) error {
		var err error
		n, err = tx.Exec(ctx, q, args...)
		return err
	})
	return n, err
}

func (d *sqliteDB) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	if isRead(q) {
		return sqlQuery(ctx, d.conn(q), q, args...)
	}
	// A write with RETURNING runs in the writer's turn, and its rows
	// cannot outlive it. Nothing needs this; QueryRow can.
	return nil, fmt.Errorf("sqlite: run writing multi-row queries in InTx: %.40s", q)
}

func (d *sqliteDB) QueryRow(ctx context.Context, q string, args ...any) Row {
	if isRead(q) {
		return sqlRow{d.conn(q).QueryRowContext(ctx, q, args...)}
	}
	return writeRow{d: d, ctx: ctx, q: q, args: args}
}

// conn returns the cached prepared statement for q, or the pool.
func (d *sqliteDB) conn(q string) sqlConn {
	if st := d.stmts.get(q); st != nil {
		return preparedConn{st}
	}
	return d.db
}

// writeRow runs a single-row write (INSERT … RETURNING) in its turn when
// scanned.
type writeRow struct {
	d    *sqliteDB
	ctx  context.Context
	q    string
	args []any
}

func (r writeRow) Scan(dest ...any) error {
	return r.d.InTx(r.ctx, func(tx Querier) error {
		return tx.QueryRow(r.ctx, r.q, r.args...).Scan(dest...)
	})
}

// InTx runs fn in the writer's next group (sqlitewriter.go).
func (d *sqliteDB) InTx(ctx context.Context, fn func(Querier) error) error {
	return d.write(ctx, func(q Querier) error { return holding(ctx, q, fn) })
}

// sqlConn is what *sql.DB and *sql.Tx have in common.
type sqlConn interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func sqlExec(ctx context.Context, c sqlConn, q string, args ...any) (int64, error) {
	res, err := c.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func sqlQuery(ctx context.Context, c sqlConn, q string, args ...any) (Rows, error) {
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// preparedConn runs a prepared statement through the sqlConn methods; the
// query text it is given is the statement's own.
type preparedConn struct{ st *sql.Stmt }

func (p preparedConn) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return p.st.ExecContext(ctx, args...)
}

func (p preparedConn) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return p.st.QueryContext(ctx, args...)
}

func (p preparedConn) QueryRowContext(ctx context.Context, _ string, args ...any) *sql.Row {
	return p.st.QueryRowContext(ctx, args...)
}

// sqlTx is the writer's shared transaction as one member sees it.
type sqlTx struct {
	tx    *sql.Tx
	stmts *stmtCache
}

func (t sqlTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	ctx = t.ctx(ctx)
	return sqlExec(ctx, t.conn(ctx, q), q, args...)
}

func (t sqlTx) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	ctx = t.ctx(ctx)
	return sqlQuery(ctx, t.conn(ctx, q), q, args...)
}

func (t sqlTx) QueryRow(ctx context.Context, q string, args ...any) Row {
	ctx = t.ctx(ctx)
	return sqlRow{t.conn(ctx, q).QueryRowContext(ctx, q, args...)}
}

// ctx keeps a member's cancelled context from interrupting a statement:
// SQLite may then roll back the whole shared transaction, every member's
// work. A member runs to its end once started.
func (t sqlTx) ctx(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// conn returns q's cached statement bound to this transaction's
// connection (prepared there once, then reused), or the transaction.
func (t sqlTx) conn(ctx context.Context, q string) sqlConn {
	if st := t.stmts.get(q); st != nil {
		return preparedConn{t.tx.StmtContext(ctx, st)}
	}
	return t.tx
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

type sqlRow struct{ row *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoRows
	}
	return err
}
