package sms

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/storage"
)

// firstOffers marks, for each incident an offer text just sent was about,
// whether it was the incident's first, and times those from the alarm. The
// text is out whatever happens here, so a failure is only logged.
func (s *Sender) firstOffers(ctx context.Context, texts []Queued, sentAt time.Time) {
	firsts := map[string]time.Time{}
	s.unmarkedIncidents(firsts, texts, sentAt)
	var since []time.Duration
	err := retryDB(ctx, func() (err error) {
		since, err = markFirstOffers(ctx, s.DB, firsts)
		return err
	})
	if err != nil {
		s.Log.Warn("first offer of an incident not recorded", "incidents", len(firsts), "err", err)
		return
	}
	s.firstOffersMarked(firsts, since)
}

// unmarkedIncidents adds to firsts the incidents of offer texts sent at
// sentAt whose first offer text is not known to be recorded, each with the
// earliest time. Drills stay out of live statistics; every drill text
// carries the prefix.
func (s *Sender) unmarkedIncidents(firsts map[string]time.Time, texts []Queued, sentAt time.Time) {
	for _, t := range texts {
		if t.Incident == "" || strings.HasPrefix(t.Body, DrillPrefix) || s.FirstMarked.has(t.Incident) {
			continue
		}
		if at, ok := firsts[t.Incident]; !ok || sentAt.Before(at) {
			firsts[t.Incident] = sentAt
		}
	}
}

// markFirstOffers records that the first offer text of each incident went
// at the time given, unless one went before, and returns how long after
// the alarm those that were first went.
func markFirstOffers(ctx context.Context, q storage.Querier, firsts map[string]time.Time) ([]time.Duration, error) {
	var since []time.Duration
	for incident, at := range firsts {
		d, first, err := incidents.MarkFirstOfferSent(ctx, q, incident, at)
		if err != nil {
			return nil, err
		}
		if first {
			since = append(since, d)
		}
	}
	return since, nil
}

// firstOffersMarked remembers the incidents recorded and times their
// first offers.
func (s *Sender) firstOffersMarked(firsts map[string]time.Time, since []time.Duration) {
	for incident := range firsts {
		s.FirstMarked.add(incident)
	}
	for _, d := range since {
		s.Metrics.AlarmToOfferSMS(d)
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
