package sms

import (
	"context"
	"strings"
	"sync"
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
		if s.FirstMarked.has(t.Incident) {
			continue
		}
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
		s.FirstMarked.add(t.Incident)
		if first {
			s.Metrics.AlarmToOfferSMS(since)
		}
	}
}

// FirstMarked remembers incidents whose first offer text was recorded, so
// the later offers of the same incident skip the write: two of the three
// offer texts of a medical alarm, a write each (issue 8). The database
// stays the judge: an incident forgotten, or marked by another replica,
// costs only an insert that changes nothing. A nil *FirstMarked
// remembers nothing.
type FirstMarked struct {
	mu  sync.Mutex
	set map[string]struct{}
}

// maxMarked bounds the memory; past it the set starts again.
const maxMarked = 10_000

func (m *FirstMarked) has(incident string) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.set[incident]
	return ok
}

func (m *FirstMarked) add(incident string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.set == nil || len(m.set) >= maxMarked {
		m.set = make(map[string]struct{})
	}
	m.set[incident] = struct{}{}
}
