package events

import (
	"context"
	"fmt"
	"log/slog"
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

// NewRelay returns a relay over db and bus.
func NewRelay(db storage.DB, bus Publisher, log *slog.Logger) *Relay {
	return &Relay{db: db, bus: bus, log: log, Grace: 2 * time.Second}
}

// Send publishes messages that were just committed with Stage. A failure is
// logged, not returned: the state change is committed and the sweeper will
// publish them later.
func (r *Relay) Send(ctx context.Context, msgs []Message) {
	for _, m := range msgs {
		if err := r.bus.Publish(ctx, m); err != nil {
			r.log.Warn("publish staged message; the sweeper will retry", "id", m.ID, "err", err)
			return
		}
		if _, err := r.db.Exec(ctx, `DELETE FROM event_outbox WHERE id = $1`, m.ID); err != nil {
			r.log.Warn("forget published message", "id", m.ID, "err", err)
		}
	}
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
	n := 0
	for _, m := range msgs {
		if err := r.bus.Publish(ctx, m); err != nil {
			return n, err
		}
		if _, err := r.db.Exec(ctx, `DELETE FROM event_outbox WHERE id = $1`, m.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
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
