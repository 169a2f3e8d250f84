package incidents

import (
	"context"
	"fmt"
	"time"

	"github.com/shouwang/shouwang/storage"
)

// KindFirstOfferSent is the timeline entry of an incident's first offer
// text accepted by the SMS provider: how soon the first responder could
// know. It is recorded once per incident.
const KindFirstOfferSent = "first_offer_sent"

// MarkFirstOfferSent records that an offer text about incident reached the
// provider at at, unless one did before. For the first it returns true and
// how long after the incident's first alarm was received that was; the
// timeline entry's key makes this exact across workers and replicas.
func MarkFirstOfferSent(ctx context.Context, q storage.Querier, incident string, at time.Time) (time.Duration, bool, error) {
	n, err := q.Exec(ctx, `INSERT INTO timeline (id, incident_id, at, kind, actor, detail) VALUES ($1, $2, $3, $4, 'system', '{}')
		ON CONFLICT (id) DO NOTHING`, KindFirstOfferSent+":"+incident, incident, at.UnixMilli(), KindFirstOfferSent)
	if err != nil {
		return 0, false, fmt.Errorf("record first offer of %s: %w", incident, err)
	}
	if n == 0 {
		return 0, false, nil
	}
	var received int64
	if err := q.QueryRow(ctx, `SELECT COALESCE(MIN(received_at), 0) FROM alarms WHERE incident_id = $1`, incident).Scan(&received); err != nil {
		return 0, true, fmt.Errorf("first alarm of %s: %w", incident, err)
	}
	if received == 0 {
		return 0, false, nil // not opened by an alarm: nothing to measure from
	}
	return at.Sub(time.UnixMilli(received)), true, nil
}
