package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// SQLite has one write lock and, with synchronous=FULL, an fsync at every
// commit. Under load the lock was busy 90 % of the time, a third of it
// waiting for fsync, and writers that found it taken slept in the busy
// handler in growing steps instead of waking when it was free (issue 8).
//
// So one goroutine does all of this process's writing. It runs write
// transactions one after another, each inside a SAVEPOINT of one shared
// transaction, and commits them together: one fsync for a group. Each
// caller still gets its own outcome: its function's error rolls back only
// its savepoint, and InTx returns only after the group's commit, so a nil
// error still means durable.

// maxGroup bounds the transactions committed together, so the first of a
// group does not wait long for the last.
const maxGroup = 64

// writerWait is how long a write waits for its turn before giving up, as
// SQLite's busy_timeout would.
const writerWait = 10 * time.Second

var errClosed = errors.New("sqlite: database closed")

// writeReq is one InTx waiting for the writer.
type writeReq struct {
	ctx context.Context
	fn  func(Querier) error
	// state: 0 waiting, 1 taken by the writer, 2 given up by the caller.
	state atomic.Int32
	done  chan writeResult
}

type writeResult struct {
	err      error
	panicked bool
	panicVal any
}

// write runs fn in the writer's next group and returns its outcome.
func (d *sqliteDB) write(ctx context.Context, fn func(Querier) error) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan writeResult, 1)}
	t := time.NewTimer(writerWait)
	defer t.Stop()
	select {
	case d.writes <- r:
	case <-d.closed:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("sqlite: database is locked: no turn to write within %s", writerWait)
	}
	var giveUp error
	select {
	case res := <-r.done:
		return res.outcome()
	case <-ctx.Done():
		giveUp = ctx.Err()
	case <-t.C:
		giveUp = fmt.Errorf("sqlite: database is locked: no turn to write within %s", writerWait)
	case <-d.closed:
		giveUp = errClosed
	}
	if r.state.CompareAndSwap(0, 2) {
		return giveUp // the writer will skip it
	}
	// Already running: its outcome is what happened.
	return (<-r.done).outcome()
}

func (res writeResult) outcome() error {
	if res.panicked {
		panic(res.panicVal) // in the caller's goroutine, where it was raised
	}
	return res.err
}

// writeLoop is the writer. It ends when d.closed is closed.
func (d *sqliteDB) writeLoop() {
	stopped := false
	defer func() {
		if stopped {
			close(d.writerDone)
			return
		}
		// A member's function ended its goroutine (runtime.Goexit, as
		// t.FailNow does): group told its members; carry on in a new one.
		go d.writeLoop()
	}()
	for {
		var first *writeReq
		select {
		case first = <-d.writes:
		case <-d.closed:
			stopped = true
			return
		}
		d.group(first)
	}
}

// group runs first and whatever else is waiting in one transaction.
func (d *sqliteDB) group(first *writeReq) {
	var members []*writeReq
	var results []writeResult
	tx, err := d.db.BeginTx(context.Background(), nil)
	if err != nil {
		first.done <- writeResult{err: fmt.Errorf("begin: %w", err)}
		return
	}
	q := sqlTx{tx: tx, stmts: d.stmts}
	finished := false
	defer func() {
		if finished {
			return
		}
		_ = tx.Rollback()
		for i, m := range members {
			if i < len(results) && (results[i].err != nil || results[i].panicked) {
				m.done <- results[i]
				continue
			}
			m.done <- writeResult{err: errors.New("sqlite: a transaction in the same group ended its goroutine; rolled back")}
		}
	}()
	next := first
	for next != nil {
		if next.state.CompareAndSwap(0, 1) {
			members = append(members, next)
			res, broken := d.member(tx, q, next)
			results = append(results, res)
			if broken != nil {
				// SQLite rolled back the whole transaction (an I/O error,
				// a full disk): the members before lost their work too.
				_ = tx.Rollback()
				for i := range results[:len(results)-1] {
					if results[i].err == nil && !results[i].panicked {
						results[i].err = fmt.Errorf("rolled back with another transaction: %w", broken)
					}
				}
				finished = true
				for i, m := range members {
					m.done <- results[i]
				}
				return
			}
		}
		next = nil
		if len(members) < maxGroup {
			next = d.nextMember()
		}
	}
	finished = true
	if len(members) == 0 {
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		_ = tx.Rollback()
		for i := range results {
			if results[i].err == nil && !results[i].panicked {
				results[i].err = fmt.Errorf("commit: %w", err)
			}
		}
	} else {
		d.noteCommit()
	}
	for i, m := range members {
		m.done <- results[i]
	}
}

// commitYields is how often the writer lets other goroutines run before
// it commits a group nobody else is waiting to join.
const commitYields = 2

// nextMember returns the next waiting write, or nil. When none is waiting
// it yields the processor a couple of times first: on a busy machine the
// goroutines about to write are often runnable but not running, and a
// commit started without them makes them wait for its fsync and then pay
// for one of their own. At 300 alarms/s on two cores this halved the
// commits (9,300 to 4,800 in the run) and the time spent in them (issue 8).
// On an idle machine Gosched returns at once.
func (d *sqliteDB) nextMember() *writeReq {
	for i := 0; ; i++ {
		select {
		case r := <-d.writes:
			return r
		default:
		}
		if i == commitYields {
			return nil
		}
		runtime.Gosched()
	}
}

// member runs one caller's function inside its own savepoint. broken is
// non-nil when the shared transaction is gone: the savepoint could not be
// released or rolled back to.
func (d *sqliteDB) member(tx *sql.Tx, q sqlTx, r *writeReq) (res writeResult, broken error) {
	if err := r.ctx.Err(); err != nil {
		return writeResult{err: err}, nil
	}
	if _, err := tx.Exec(`SAVEPOINT member`); err != nil {
		return writeResult{err: fmt.Errorf("begin: %w", err)}, err
	}
	defer func() {
		if p := recover(); p != nil {
			res = writeResult{panicked: true, panicVal: p}
		}
		if res.err != nil || res.panicked {
			if _, err := tx.Exec(`ROLLBACK TO member`); err != nil {
				broken = err
				return
			}
		}
		if _, err := tx.Exec(`RELEASE member`); err != nil {
			broken = err
			if res.err == nil && !res.panicked {
				res.err = fmt.Errorf("release: %w", err)
			}
		}
	}()
	return writeResult{err: r.fn(q)}, nil
}
