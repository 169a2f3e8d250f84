package sms

import (
	"context"
	"strings"
	"time"

	"github.com/shouwang/shouwang/incidents"
)

// firstOffers marks, for each incident an offer text just sent was about,
// whether it was the incident's first, and times those from the alarm. The
// text is out whatever happens here, so a failure is only logged.
func (s *Sender) firstOffers(ctx context.Context, texts []Queued, sentAt time.Time) {
	seen := make(map[string]bool, len(texts))
	for _, t := range texts {
		// Drills stay out of live statistics; every drill text carries the prefix.
		if t.Incident == "" || seen[t.Incident] || strings.HasPrefix(t.Body, DrillPrefix) {
			continue
		}
		seen[t.Incident] = true
		var since time.Duration
		var first bool
		err := retryDB(ctx, func() (err error) {
			since, first, err = incidents.MarkFirstOfferSent(ctx, s.DB, t.Incident, sentAt)
			return err
		})
		if err != nil {
			s.Log.Warn("first offer of an incident not recorded", "incident", t.Incident, "err", err)
			continue
		}
		if first {
			s.Metrics.AlarmToOfferSMS(since)
		}
	}
}
