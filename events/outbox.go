package events

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/shouwang/shouwang/storage"
)

// Stage records messages in the same transaction as the state change that
// caused them. Once the transaction commits they will be published, even if
// this process dies before it publishes them itself (the Relay sweeps).
// Inside InTx the rows are held and go in with the transaction's other
// staged messages in one statement (storage.Append): a statement each was a
// good part of a plan run's transaction (issue 8).
func Stage(ctx context.Context, q storage.Querier, now time.Time, msgs ...Message) error {
	for _, m := range msgs {
		var nb int64
		if !m.NotBefore.IsZero() {
			nb = m.NotBefore.UnixMilli()
		}
		if err := storage.Append(ctx, q, outboxRows, m.ID, m.Subject, string(m.Data), nb, now.UnixMilli()); err != nil {
			return fmt.Errorf("stage %s: %w", m.ID, err)
		}
	}
	return nil
}

// outboxRows are inserted when the staging transaction's function returns
// (storage.Append): only the relay reads them, after the commit.
var outboxRows = &storage.Appender{Insert: `INSERT INTO event_outbox (id, subject, data, not_before, created_at)`, Cols: 5,
	Then: `ON CONFLICT (id) DO NOTHING`}

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
	// Settle is how long a message JetStream acknowledged keeps its outbox
	// row (Bus.Settle): a stream that does not fsync each message can lose
	// what it acknowledged last, and the sweeper publishes it again from
	// the row. It must stay well below Grace, or the sweeper publishes
	// every message twice (JetStream would drop the copies).
	Settle time.Duration

	// While Run runs, Send leaves the outbox rows of what JetStream
	// acknowledged here, and Run deletes them together every
	// forgetEvery: one commit for many handlers' messages instead of one
	// each, and no handler waits for it. Without Run, Send deletes itself.
	mu        sync.Mutex
	forgetter bool
	acked     []ack // in the order JetStream acknowledged them
	wake      chan struct{}
}

// ack is a message JetStream acknowledged at a time.
type ack struct {
	id string
	at time.Time
}

// forgetChunk bounds the ids of one DELETE, well under both databases'
// limits on bound parameters.
const forgetChunk = 500

// forgetEvery is how long acknowledged messages wait for their DELETE
// (after Settle); with Settle, far below Grace, so the sweeper does not
// publish them again.
// maxAcked bounds the ids kept while the database refuses the DELETE:
// beyond it ids are dropped, and the sweeper publishes those messages once
// more (JetStream and the handlers deduplicate).
const (
	forgetEvery = 50 * time.Millisecond
	maxAcked    = 100_000
)

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
// While Run runs, the DELETE is left to it (see forgetEvery). Handlers
// must not wait for a shared DELETE: tried, they queued behind one
// another's for SQLite's write lock, and the alarm storm fell further
// behind.
func (r *Relay) Send(ctx context.Context, msgs []Message) {
	published := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if err := r.bus.Publish(ctx, m); err != nil {
			r.log.Warn("publish staged message; the sweeper will retry", "id", m.ID, "err", err)
			break
		}
		published = append(published, m.ID)
	}
	if len(published) == 0 {
		return
	}
	if r.later(published) {
		return
	}
	if err := r.delete(ctx, published); err != nil {
		r.log.Warn("forget published messages; the sweeper will publish them again (deduplicated)", "ids", published, "err", err)
	}
}

// later hands acknowledged ids to Run to forget, and reports whether it
// did. Without Run the caller deletes them itself, unless they must
// settle first: then the rows stay and a later sweep publishes them once
// more (deduplicated), which is safe where forgetting too early is not.
func (r *Relay) later(ids []string) bool {
	r.mu.Lock()
	if !r.forgetter {
		r.mu.Unlock()
		return r.Settle > 0
	}
	now := time.Now()
	for _, id := range ids {
		if len(r.acked) >= maxAcked {
			break
		}
		r.acked = append(r.acked, ack{id: id, at: now})
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return true
}

// delete removes published messages from the outbox, a chunk a statement.
// Only ids JetStream has acknowledged may be passed: a message deleted
// before that would be lost in a crash.
func (r *Relay) delete(ctx context.Context, ids []string) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), forgetChunk)]
		ids = ids[len(chunk):]
		if _, err := r.db.Exec(ctx, `DELETE FROM event_outbox WHERE id IN (`+storage.Marks(1, len(chunk))+`)`, storage.Args(chunk)...); err != nil {
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
	if len(published) > 0 && !r.later(published) {
		if err := r.delete(ctx, published); err != nil {
			return 0, err
		}
	}
	return len(published), pubErr
}

// Run sweeps every interval, and deletes what Send published, until ctx
// ends; then it deletes what is left.
func (r *Relay) Run(ctx context.Context, interval time.Duration) {
	r.mu.Lock()
	r.forgetter, r.wake = true, make(chan struct{}, 1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.forgetter = false
		r.mu.Unlock()
		// Shutting down: one last DELETE of what has settled, so a clean
		// restart does not publish these again. The rest stay: the next
		// start publishes them once more, and JetStream drops the copies.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		r.forget(fctx)
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	var due <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			if due == nil {
				due = time.After(forgetEvery)
			}
		case <-due:
			due = nil
			if r.forget(ctx) {
				due = time.After(forgetEvery)
			}
		case <-t.C:
			r.forget(ctx)
			if n, err := r.Sweep(ctx, time.Now()); err != nil {
				r.log.Warn("outbox sweep", "err", err)
			} else if n > 0 {
				r.log.Info("outbox sweep published left-over messages", "n", n)
			}
		}
	}
}

// forget deletes the outbox rows of published messages that have settled,
// and reports whether some are still settling. Ids whose DELETE fails are
// kept for the next sweep tick.
func (r *Relay) forget(ctx context.Context) (settling bool) {
	r.mu.Lock()
	// acked is in acknowledgement order: the settled ones come first.
	cut := time.Now().Add(-r.Settle)
	n := sort.Search(len(r.acked), func(i int) bool { return r.acked[i].at.After(cut) })
	done := r.acked[:n:n]
	r.acked = r.acked[n:]
	settling = len(r.acked) > 0
	r.mu.Unlock()
	if len(done) == 0 {
		return settling
	}
	ids := make([]string, len(done))
	for i, a := range done {
		ids[i] = a.id
	}
	if err := r.delete(ctx, ids); err != nil {
		r.log.Warn("forget published messages; retrying", "n", len(ids), "err", err)
		r.mu.Lock()
		if len(r.acked)+len(done) <= maxAcked {
			r.acked = append(done, r.acked...)
		}
		r.mu.Unlock()
	}
	return settling
}
