package incidents

import (
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
)

// Status of an incident.
type Status string

// The lifecycle: open → responding (someone accepted) or escalated (nobody
// did; the emergency center was texted) → resolved. Escalated incidents can
// still become responding when a late acceptance arrives.
const (
	StatusOpen       Status = "open"
	StatusResponding Status = "responding"
	StatusEscalated  Status = "escalated"
	StatusResolved   Status = "resolved"
	// StatusCancelled: the only person who called for help said they are safe.
	StatusCancelled Status = "cancelled"
)

// Active reports whether the incident still needs people.
func (s Status) Active() bool {
	return s == StatusOpen || s == StatusResponding || s == StatusEscalated
}

// ValidStatus reports whether s names a status (or "active", all of the
// active ones), for list filters.
func ValidStatus(s string) bool {
	switch Status(s) {
	case StatusOpen, StatusResponding, StatusEscalated, StatusResolved, StatusCancelled, "active":
		return true
	}
	return false
}

// Incident is what one or more alarms are about.
type Incident struct {
	ID           string          `json:"id"`
	Community    string          `json:"community"`
	Type         string          `json:"type"`
	Category     string          `json:"category"`
	Severity     events.Severity `json:"-"`
	Status       Status          `json:"status"`
	Location     geo.Point       `json:"location"`
	Address      string          `json:"address,omitempty"`
	Reports      int             `json:"reports"`
	Drill        bool            `json:"drill"`
	Wave         int             `json:"wave"`
	Accepted     int             `json:"accepted"`
	Needed       int             `json:"needed"`
	OpenedAt     time.Time       `json:"opened_at"`
	LastReportAt time.Time       `json:"last_report_at"`
	ClosedAt     time.Time       `json:"closed_at,omitzero"`
}

// Correlate picks the open incident an alarm belongs to: same community and
// type, last report within the type's window, within its radius; the
// nearest wins. It returns -1 when the alarm opens a new incident. A drill
// always opens its own: it has its own scope and report, and a real press
// never joins one.
func Correlate(a Alarm, where geo.Point, open []Incident, rule events.Correlation) int {
	if a.Drill {
		return -1
	}
	best, bestD := -1, 0.0
	for i, in := range open {
		if in.Community != a.Community || in.Type != a.Type || !in.Status.Active() || in.Drill != a.Drill {
			continue
		}
		if a.ReceivedAt.Sub(in.LastReportAt) > rule.Window {
			continue
		}
		d := geo.DistanceM(where, in.Location)
		if d > rule.RadiusM {
			continue
		}
		if best < 0 || d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// Payload is what incident events carry: enough for a subscriber to act
// without reading the database.
type Payload struct {
	ID        string    `json:"id"`
	Community string    `json:"community"`
	Type      string    `json:"type"`
	Category  string    `json:"category"`
	Severity  string    `json:"severity"`
	Status    Status    `json:"status"`
	Location  geo.Point `json:"location"`
	Address   string    `json:"address,omitempty"`
	Reports   int       `json:"reports"`
	Drill     bool      `json:"drill,omitempty"`
	AlarmID   string    `json:"alarm_id,omitempty"`
	Detail    any       `json:"detail,omitempty"`
}

// PayloadOf summarises an incident for an event.
func PayloadOf(in Incident) Payload {
	return Payload{ID: in.ID, Community: in.Community, Type: in.Type, Category: in.Category,
		Severity: in.Severity.Label(), Status: in.Status, Location: in.Location, Address: in.Address,
		Reports: in.Reports, Drill: in.Drill}
}

// Event builds incidents.<community>.<type>.<name> for in. key makes the
// event id unique and stable for the fact it reports.
func Event(in Incident, name, key, actor string, at time.Time, detail any) (events.Message, error) {
	p := PayloadOf(in)
	p.Detail = detail
	ev, err := events.New(name+":"+key, "incident."+name,
		events.IncidentSubject(in.Community, in.Type, name), in.Community, at, p)
	if err != nil {
		return events.Message{}, err
	}
	ev.Actor, ev.Drill = actor, in.Drill
	return events.EventMessage(ev, time.Time{})
}
