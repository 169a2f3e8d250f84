package storage

import (
	"context"
	"time"
)

// SQLite copies the write-ahead log back into the database file at a
// checkpoint, and by default the connection whose commit takes the log
// past 1,000 pages does it there and then. That was the writer goroutine,
// every group of it waiting: 37 % of its commit time at 300 alarms/s
// (issue 8). So a goroutine of its own checkpoints, shortly after commits,
// on another connection; a PASSIVE checkpoint runs beside the writer
// without taking its lock. The writer still checkpoints itself past
// walFallbackPages (wal_autocheckpoint), should this one fall behind.

// checkpointEvery is the least time between two checkpoints.
const checkpointEvery = 100 * time.Millisecond

// walFallbackPages is the log size, in pages, at which the writer
// checkpoints in its own commit.
const walFallbackPages = 10_000

// checkpointLoop checkpoints after commits until d.closed is closed.
func (d *sqliteDB) checkpointLoop() {
	defer close(d.checkpointerDone)
	for {
		select {
		case <-d.closed:
			return
		case <-d.committed:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		// A failed checkpoint leaves the log longer; the next one, or the
		// writer's fallback, copies it. Nothing is lost either way.
		_, _ = d.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		cancel()
		select {
		case <-d.closed:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// noteCommit tells the checkpointer there is something to copy.
func (d *sqliteDB) noteCommit() {
	select {
	case d.committed <- struct{}{}:
	default:
	}
}
