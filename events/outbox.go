package events

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/shouwang/shouwang/storage"
)

// Stage records messages in the same transaction as the state change that
// caused them. Once the transaction commits they will be published, even if
// this process dies before it publishes them itself (the Relay sweeps).
func Stage(ctx context.Context, q storage.Querier, now time.Time, msgs ...Message) error {
	for _, m := range msgs {
		var nb int64
		if !m.NotBefore.IsZero() {
			nb = m.NotBefore.UnixMilli()
		}
		if _, err := q.Exec(ctx, `INSERT INTO event_outbox (id, subject, data, not_before, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
			m.ID, m.Subject, string(m.Data), nb, now.UnixMilli()); err != nil {
			return fmt.Errorf("stage %s: %w", m.ID, err)
		}
	}
	return nil
}

// Publisher is the part of the bus the relay needs.
type Publisher interface {
	Publish(ctx context.Context, m Message) error
}

// Relay publishes staged messages and forgets them once JetStream has them.
type Relay struct {
	db  storage.DB
	bus Publisher
	log *slog.Logger
	// Grace is how old a staged message must be before the sweeper takes
	// it, so it does not race the handler that is publishing it right now.
	Grace time.Duration
}

// forgetChunk bounds the ids of one DELETE, well under both databases'
// limits on bound parameters.
const forgetChunk = 500

// NewRelay returns a relay over db and bus.
func NewRelay(db storage.DB, bus Publisher, log *slog.Logger) *Relay {
	return &Relay{db: db, bus: bus, log: log, Grace: 2 * time.Second}
}

// Send publishes messages that were just committed with Stage, then
// deletes from the outbox, in one statement, those JetStream acknowledged.
// (A DELETE a message was a quarter of the intake's time on SQLite, where
// each commit waits for fsync; issue 8.) A failure is logged, not
// returned: the state change is committed and the sweeper will publish
// what is left later.
//
// Sends do not share deletes with one another: tried, handlers queued
// behind one another's DELETE for SQLite's write lock, and the alarm storm
// fell further behind.
func (r *Relay) Send(ctx context.Context, msgs []Message) {
	published := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if err := r.bus.Publish(ctx, m); err != nil {
			r.log.Warn("publish staged message; the sweeper will retry", "id", m.ID, "err", err)
			break
		}
		published = append(published, m.ID)
	}
	if err := r.delete(ctx, published); err != nil {
		r.log.Warn("forget published messages; the sweeper will publish them again (deduplicated)", "ids", published, "err", err)
	}
}

// delete removes published messages from the outbox, a chunk a statement.
// Only ids JetStream has acknowledged may be passed: a message deleted
// before that would be lost in a crash.
func (r *Relay) delete(ctx context.Context, ids []string) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), forgetChunk)]
		ids = ids[len(chunk):]
		marks := make([]string, len(chunk))
		args := make([]any, len(chunk))
		for i, id := range chunk {
			marks[i], args[i] = "$"+strconv.Itoa(i+1), id
		}
		if _, err := r.db.Exec(ctx, `DELETE FROM event_outbox WHERE id IN (`+strings.Join(marks, ", ")+`)`, args...); err != nil {
			return fmt.Errorf("forget %d published messages: %w", len(chunk), err)
		}
	}
	return nil
}

// Commit runs fn in a transaction and, once it has committed, publishes
// the messages fn staged. It is how a handler changes state and announces
// it without losing either.
func (r *Relay) Commit(ctx context.Context, fn func(q storage.Querier) ([]Message, error)) error {
	var staged []Message
	err := r.db.InTx(ctx, func(q storage.Querier) error {
		var err error
		staged, err = fn(q)
		return err
	})
	if err != nil {
		return err
	}
	r.Send(ctx, staged)
	return nil
}

// Sweep publishes messages left behind by a crash or an unreachable bus.
// It returns how many it published.
func (r *Relay) Sweep(ctx context.Context, now time.Time) (int, error) {
	rows, err := r.db.Query(ctx, `SELECT id, subject, data, not_before FROM event_outbox
		WHERE created_at <= $1 ORDER BY created_at LIMIT 500`, now.Add(-r.Grace).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sweep outbox: %w", err)
	}
	var msgs []Message
	for rows.Next() {
		var m Message
		var data string
		var nb int64
		if err := rows.Scan(&m.ID, &m.Subject, &data, &nb); err != nil {
			rows.Close()
			return 0, err
		}
		m.Data = []byte(data)
		if nb > 0 {
			m.NotBefore = time.UnixMilli(nb)
		}
		msgs = append(msgs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var published []string
	var pubErr error
	for _, m := range msgs {
		if pubErr = r.bus.Publish(ctx, m); pubErr != nil {
			break
		}
		published = append(published, m.ID)
	}
	if err := r.delete(ctx, published); err != nil {
		return 0, err
	}
	return len(published), pubErr
}

// Run sweeps every interval until ctx ends.
func (r *Relay) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := r.Sweep(ctx, time.Now()); err != nil {
				r.log.Warn("outbox sweep", "err", err)
			} else if n > 0 {
				r.log.Info("outbox sweep published left-over messages", "n", n)
			}
		}
	}
}
