package incidents

import (
	"context"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// Announce records a fact on an incident's timeline and stages the
// incident event that tells live boards about it, both in the caller's
// transaction, so the board never shows a change the database does not
// hold. recordID keeps the timeline line idempotent; the event's id is
// kind:key. It returns the event for the caller to relay after commit.
func Announce(ctx context.Context, q storage.Querier, in Incident, recordID, kind, key, actor string, at time.Time,
	detail any) (events.Message, error) {
	if err := Record(ctx, q, recordID, in.ID, at, kind, actor, detail); err != nil {
		return events.Message{}, err
	}
	m, err := Event(in, kind, key, actor, at, detail)
	if err != nil {
		return events.Message{}, err
	}
	return m, events.Stage(ctx, q, at, m)
}
