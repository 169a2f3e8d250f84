package plans

import (
	"sort"
	"time"

	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/responders"
)

// DrillReport is the after-action report of a drill: how fast people
// answered, how many said yes in each wave, and whether the plan's duties
// were done on time.
type DrillReport struct {
	Drill     string    `json:"drill"`
	Incident  string    `json:"incident"`
	Type      string    `json:"type"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Status    string    `json:"status"`
	// FirstAcceptS is seconds from the drill's start to the first yes; nil
	// if nobody accepted.
	FirstAcceptS *float64        `json:"time_to_first_accept_s"`
	AcceptRate   float64         `json:"accept_rate"`
	Waves        []WaveStat      `json:"waves"`
	Responders   []ResponderStat `json:"responders"`
	Duties       DutyStats       `json:"duties"`
	// NeverAnswered names the responders offered who never replied.
	NeverAnswered []string `json:"never_answered"`
}

// WaveStat is one wave of offers.
type WaveStat struct {
	Wave       int     `json:"wave"`
	Offered    int     `json:"offered"`
	Accepted   int     `json:"accepted"`
	Declined   int     `json:"declined"`
	NoAnswer   int     `json:"no_answer"`
	AcceptRate float64 `json:"accept_rate"`
}

// ResponderStat is one responder's part.
type ResponderStat struct {
	Responder string  `json:"responder"`
	Name      string  `json:"name"`
	Wave      int     `json:"wave"`
	Outcome   string  `json:"outcome"` // accepted, arrived, declined, no_answer, failed
	DistanceM float64 `json:"distance_m"`
	// ReplyS is seconds from the offer to the answer; nil if none.
	ReplyS *float64 `json:"reply_s"`
	// ArriveS is seconds from the offer to "on scene"; nil if not arrived.
	ArriveS *float64 `json:"arrive_s,omitempty"`
}

// DutyStats counts the plan's duties.
type DutyStats struct {
	Total   int        `json:"total"`
	OnTime  int        `json:"on_time"`
	Late    int        `json:"late"`
	NotDone int        `json:"not_done"`
	Skipped int        `json:"skipped"` // parties outside the drill's scope
	Items   []DutyStat `json:"items"`
}

// DutyStat is one duty's outcome.
type DutyStat struct {
	Duty     string    `json:"duty"`
	Title    string    `json:"title"`
	Assignee string    `json:"assignee"`
	Status   string    `json:"status"`
	DueAt    time.Time `json:"due_at,omitzero"`
	DoneAt   time.Time `json:"done_at,omitzero"`
	Outcome  string    `json:"outcome"` // on_time, late, not_done, skipped
}

func seconds(from, to time.Time) *float64 {
	s := to.Sub(from).Seconds()
	return &s
}

// ComputeDrillReport builds the report from what the drill left behind.
func ComputeDrillReport(dr Drill, in incidents.Incident, offers []responders.Offer, duties []Duty, end time.Time) DrillReport {
	rep := DrillReport{Drill: dr.ID, Incident: in.ID, Type: in.Type, StartedAt: dr.StartedAt, EndedAt: end.UTC(),
		Status: string(in.Status), Waves: []WaveStat{}, Responders: []ResponderStat{}, NeverAnswered: []string{},
		Duties: DutyStats{Items: []DutyStat{}}}
	waves := map[int]*WaveStat{}
	var firstAccept time.Time
	accepted := 0
	for _, o := range offers {
		w := waves[o.Wave]
		if w == nil {
			w = &WaveStat{Wave: o.Wave}
			waves[o.Wave] = w
		}
		w.Offered++
		st := ResponderStat{Responder: o.Responder, Name: o.Name, Wave: o.Wave, DistanceM: o.DistanceM}
		answered := !o.AnsweredAt.IsZero()
		switch {
		case o.Status == responders.OfferFailed:
			st.Outcome = "failed"
		case answered && (o.Status == responders.OfferAccepted || !o.ArrivedAt.IsZero()):
			st.Outcome = "accepted"
			if !o.ArrivedAt.IsZero() {
				st.Outcome = "arrived"
				st.ArriveS = seconds(o.CreatedAt, o.ArrivedAt)
			}
			w.Accepted++
			accepted++
			if firstAccept.IsZero() || o.AnsweredAt.Before(firstAccept) {
				firstAccept = o.AnsweredAt
			}
		case answered && o.Status == responders.OfferDeclined:
			st.Outcome = "declined"
			w.Declined++
		default:
			// Stood down or expired before any reply: nobody answered.
			st.Outcome = "no_answer"
			w.NoAnswer++
			rep.NeverAnswered = append(rep.NeverAnswered, o.Name)
		}
		if answered && st.Outcome != "no_answer" && st.Outcome != "failed" {
			st.ReplyS = seconds(o.CreatedAt, o.AnsweredAt)
		}
		rep.Responders = append(rep.Responders, st)
	}
	if !firstAccept.IsZero() {
		rep.FirstAcceptS = seconds(dr.StartedAt, firstAccept)
	}
	if len(offers) > 0 {
		rep.AcceptRate = float64(accepted) / float64(len(offers))
	}
	for _, w := range waves {
		if w.Offered > 0 {
			w.AcceptRate = float64(w.Accepted) / float64(w.Offered)
		}
		rep.Waves = append(rep.Waves, *w)
	}
	sort.Slice(rep.Waves, func(i, j int) bool { return rep.Waves[i].Wave < rep.Waves[j].Wave })
	for _, d := range duties {
		st := DutyStat{Duty: d.ID, Title: d.Title.ZH, Assignee: d.Assignee, Status: d.Status, DueAt: d.DueAt, DoneAt: d.DoneAt}
		rep.Duties.Total++
		switch {
		case d.Status == DutySkipped:
			st.Outcome = "skipped"
			rep.Duties.Skipped++
		case !d.DoneAt.IsZero() && (d.DueAt.IsZero() || !d.DoneAt.After(d.DueAt)):
			st.Outcome = "on_time"
			rep.Duties.OnTime++
		case !d.DoneAt.IsZero():
			st.Outcome = "late"
			rep.Duties.Late++
		default:
			st.Outcome = "not_done"
			rep.Duties.NotDone++
		}
		rep.Duties.Items = append(rep.Duties.Items, st)
	}
	return rep
}
