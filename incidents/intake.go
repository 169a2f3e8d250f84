package incidents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/metrics"
	"github.com/shouwang/shouwang/storage"
)

// Bus is what alarm submission needs from the event bus.
type Bus interface {
	Publish(ctx context.Context, m events.Message) error
}

// Submitter accepts presses: it publishes them to JetStream and returns only
// once JetStream has stored them.
type Submitter struct {
	Bus Bus
	Tax *events.Taxonomy
	// Timeout bounds the wait for JetStream's acknowledgement; beyond it the
	// resident's phone is told to retry.
	Timeout time.Duration
}

// Submit publishes an alarm. An error wrapping errdefs.ErrUnavailable means
// the alarm may not be stored and the client must retry with the same key.
func (s *Submitter) Submit(ctx context.Context, a Alarm) error {
	m, err := AlarmMessage(a)
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.Bus.Publish(ctx, m); err != nil {
		return fmt.Errorf("store alarm %s: %w (%w)", a.ID, errdefs.ErrUnavailable, err)
	}
	return nil
}

// AlarmMessage is an alarm as the ALARMS stream carries it. Its id is the
// alarm id, so JetStream and intake take a press published twice once.
func AlarmMessage(a Alarm) (events.Message, error) {
	ev, err := events.New(a.ID, "alarm.pressed", events.AlarmSubject(a.Community, a.Type), a.Community, a.ReceivedAt, a)
	if err != nil {
		return events.Message{}, err
	}
	ev.Actor, ev.Drill = a.Resident, a.Drill
	return events.EventMessage(ev, time.Time{})
}

// Intake is the handler that turns alarms into incidents.
type Intake struct {
	DB    storage.DB
	Tax   *events.Taxonomy
	Relay *events.Relay
	Log   *slog.Logger
	Now   func() time.Time
	// Metrics counts alarms opened and joined; nil counts nothing.
	Metrics *metrics.Set

	group intakeGroup
}

// Handle correlates one alarm: it joins an open incident as a report or
// opens a new incident. It is idempotent on the alarm id.
//
// Alarms handled at the same moment share one transaction (see group):
// in a storm every press of a fire waits for the same correlation lock, and
// a commit each held it for a WAL flush each (issue 8).
func (h *Intake) Handle(ctx context.Context, ev events.Event) error {
	var a Alarm
	if err := ev.Decode(&a); err != nil {
		return events.Permanent(err)
	}
	it, ok := h.Tax.Type(a.Type)
	if !ok {
		return events.Permanent(fmt.Errorf("alarm %s: unknown type %q", a.ID, a.Type))
	}
	r, err := h.group.run(ctx, h, intakeItem{alarm: a, typ: it})
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return events.Permanent(err)
		}
		return err
	}
	if r.outcome != "" {
		if !a.Drill { // drills stay out of live statistics
			h.Metrics.AlarmProcessed(a.Type, r.outcome)
		}
		h.Log.Info("alarm correlated", "alarm", a.ID, "incident", r.incident, "outcome", r.outcome, "type", a.Type, "community", a.Community)
	}
	h.Relay.Send(ctx, r.staged)
	return nil
}

// intakeItem is one alarm waiting for a transaction, and what became of it.
type intakeItem struct {
	alarm Alarm
	typ   events.IncidentType
}

type intakeResult struct {
	staged            []events.Message
	outcome, incident string // set when this delivery committed the alarm
}

// process correlates one alarm inside q. It stages nothing: the caller
// stages every alarm's messages of the transaction in one statement. held
// lists the correlation locks this transaction holds already.
func (h *Intake) process(ctx context.Context, q storage.Querier, a Alarm, it events.IncidentType, now time.Time,
	held map[string]bool) (intakeResult, error) {
	var r intakeResult
	where := a.Location
	if !a.HasLocation {
		p, err := communityCentre(ctx, q, a.Community)
		if err != nil {
			return r, err
		}
		where = p
	}
	n, err := q.Exec(ctx, `INSERT INTO alarms (id, community_id, resident, idem_key, type, lat, lng, has_location,
		address, note, drill, received_at, processed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (id) DO NOTHING`,
		a.ID, a.Community, a.Resident, a.Key, a.Type, where.Lat, where.Lng, a.HasLocation, a.Address, a.Note,
		a.Drill, a.ReceivedAt.UnixMilli(), now.UnixMilli())
	if err != nil {
		return r, fmt.Errorf("record alarm %s: %w", a.ID, err)
	}
	if n == 0 {
		return r, nil // seen before: its incident and events were committed with it
	}
	// One correlation at a time per community and type, across replicas;
	// held until the transaction ends.
	if lock := a.Community + "\x00" + a.Type; !held[lock] {
		if _, err := q.Exec(ctx, `INSERT INTO correlation_locks (community_id, type, n) VALUES ($1, $2, 1)
			ON CONFLICT (community_id, type) DO UPDATE SET n = correlation_locks.n + 1`, a.Community, a.Type); err != nil {
			return r, fmt.Errorf("correlation lock: %w", err)
		}
		held[lock] = true
	}
	near, ok, err := correlateOpen(ctx, q, a, where, it.Correlation)
	if err != nil {
		return r, err
	}
	if ok {
		m, joined, err := attach(ctx, q, near, a, now)
		if err != nil {
			return r, err
		}
		if joined {
			return intakeResult{staged: []events.Message{m}, outcome: metrics.AlarmJoined, incident: near.ID}, nil
		}
		// Closed since the read above: the alarm opens a new incident.
	}
	m, err := open1(ctx, q, it, a, where, now)
	if err != nil {
		return r, err
	}
	return intakeResult{staged: []events.Message{m}, outcome: metrics.AlarmOpened, incident: openedID(a)}, nil
}

// alone correlates one alarm in a transaction of its own.
func (h *Intake) alone(ctx context.Context, item intakeItem) (intakeResult, error) {
	rs, err := h.correlate(ctx, []intakeItem{item})
	if err != nil {
		return intakeResult{}, err
	}
	return rs[0], nil
}

// correlate correlates items one after another in one transaction and
// stages all their messages in one statement.
func (h *Intake) correlate(ctx context.Context, items []intakeItem) ([]intakeResult, error) {
	results := make([]intakeResult, len(items))
	err := h.DB.InTx(ctx, func(q storage.Querier) error {
		now := h.Now()
		held := map[string]bool{}
		var staged []events.Message
		for i, it := range items {
			r, err := h.process(ctx, q, it.alarm, it.typ, now, held)
			if err != nil {
				return err
			}
			results[i] = r
			staged = append(staged, r.staged...)
		}
		return events.Stage(ctx, q, now, staged...)
	})
	return results, err
}

// pressDetail is what the timeline keeps of a press: the dispatcher reads
// the resident's own words there.
func pressDetail(a Alarm) map[string]any {
	d := map[string]any{"alarm_id": a.ID, "pressed_at": a.ReceivedAt}
	if a.Address != "" {
		d["address"] = a.Address
	}
	if a.Note != "" {
		d["note"] = a.Note
	}
	return d
}

// correlateOpen finds the open incident an alarm joins, if any. It reads
// only the incidents of the alarm's type whose position lies in the box
// around the alarm (an index serves the box): reading every open incident
// of the type made each alarm cost O(open incidents), which no busy hour
// survives (issue 8: 36 % of the CPU at 500 alarms/s).
func correlateOpen(ctx context.Context, q storage.Querier, a Alarm, where geo.Point, rule events.Correlation) (Incident, bool, error) {
	if a.Drill {
		return Incident{}, false, nil // a drill always opens its own (Correlate)
	}
	since := a.ReceivedAt.Add(-rule.Window).UnixMilli()
	box := geo.BoxAround(where, rule.RadiusM)
	sql := `SELECT ` + incidentColumns + ` FROM incidents
		WHERE community_id = $1 AND type = $2 AND lat >= $3 AND lat <= $4 AND status IN ('open', 'responding', 'escalated')
		AND last_report_at >= $5 AND drill = $6`
	args := []any{a.Community, a.Type, box.MinLat, box.MaxLat, since, a.Drill}
	if box.MinLng >= -180 && box.MaxLng <= 180 {
		// A box across the antimeridian would need two ranges; there the
		// latitude band alone narrows the search and Correlate decides.
		sql += ` AND lng >= $7 AND lng <= $8`
		args = append(args, box.MinLng, box.MaxLng)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return Incident{}, false, fmt.Errorf("open incidents near %s: %w", a.ID, err)
	}
	var near []Incident
	for rows.Next() {
		in, err := scanIncident(rows)
		if err != nil {
			rows.Close()
			return Incident{}, false, fmt.Errorf("open incidents near %s: %w", a.ID, err)
		}
		near = append(near, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Incident{}, false, fmt.Errorf("open incidents near %s: %w", a.ID, err)
	}
	i := Correlate(a, where, near, rule)
	if i < 0 {
		return Incident{}, false, nil
	}
	return near[i], true, nil
}

// attach counts the alarm as a report of incident in; the caller stages
// the message it returns. It changes only the
// report count and time, in one statement, so it cannot undo what a
// dispatcher changed since in was read (status, waves, acceptances; the
// old read-modify-write of the whole row could). Reports cannot have
// changed meanwhile: attaches to one incident hold its correlation lock.
// It reports false, changing nothing, when the incident is no longer
// active.
func attach(ctx context.Context, q storage.Querier, in Incident, a Alarm, now time.Time) (events.Message, bool, error) {
	n, err := q.Exec(ctx, `UPDATE incidents SET reports = reports + 1,
		last_report_at = CASE WHEN last_report_at < $2 THEN $2 ELSE last_report_at END
		WHERE id = $1 AND status IN ('open', 'responding', 'escalated')`, in.ID, a.ReceivedAt.UnixMilli())
	if err != nil {
		return events.Message{}, false, fmt.Errorf("add report %s to %s: %w", a.ID, in.ID, err)
	}
	if n == 0 {
		return events.Message{}, false, nil
	}
	in.Reports++
	if a.ReceivedAt.After(in.LastReportAt) {
		in.LastReportAt = a.ReceivedAt
	}
	if _, err := q.Exec(ctx, `UPDATE alarms SET incident_id = $2 WHERE id = $1`, a.ID, in.ID); err != nil {
		return events.Message{}, false, fmt.Errorf("attach alarm %s: %w", a.ID, err)
	}
	detail := pressDetail(a)
	detail["reports"] = in.Reports
	if err := Record(ctx, q, "report:"+a.ID, in.ID, now, events.IncidentReportAdded, a.Resident, detail); err != nil {
		return events.Message{}, false, err
	}
	m, err := Event(in, events.IncidentReportAdded, a.ID, a.Resident, now, detail)
	if err != nil {
		return events.Message{}, false, err
	}
	return m, true, nil
}

// openedID is the id of the incident an alarm opens. It is derived from the
// alarm so that the incident has one id however often the alarm is handled.
func openedID(a Alarm) string { return OpenedID(a.ID) }

// OpenedID is the id of the incident the alarm with this id opens, if it
// opens one (a press may join an open incident instead).
func OpenedID(alarmID string) string { return "in_" + alarmID[3:] }

// open1 opens an incident for the alarm; the caller stages the message it
// returns.
func open1(ctx context.Context, q storage.Querier, it events.IncidentType, a Alarm, where geo.Point, now time.Time) (events.Message, error) {
	if a.Severity != 0 {
		it.Severity = a.Severity
	}
	in := Incident{
		ID:        openedID(a),
		Community: a.Community, Type: a.Type, Category: it.Category, Severity: it.Severity,
		Status: StatusOpen, Location: where, Address: a.Address, Reports: 1, Drill: a.Drill,
		Needed: it.Dispatch.AcceptNeeded, OpenedAt: now, LastReportAt: a.ReceivedAt,
	}
	_, err := q.Exec(ctx, `INSERT INTO incidents (id, community_id, type, category, severity, status, lat, lng, address,
		reports, drill, needed, opened_at, last_report_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		in.ID, in.Community, in.Type, in.Category, int(in.Severity), string(in.Status), in.Location.Lat, in.Location.Lng,
		in.Address, in.Reports, in.Drill, in.Needed, in.OpenedAt.UnixMilli(), in.LastReportAt.UnixMilli())
	if err != nil {
		return events.Message{}, fmt.Errorf("open incident for %s: %w", a.ID, err)
	}
	if _, err := q.Exec(ctx, `UPDATE alarms SET incident_id = $2, opened = true WHERE id = $1`, a.ID, in.ID); err != nil {
		return events.Message{}, fmt.Errorf("attach alarm %s: %w", a.ID, err)
	}
	detail := pressDetail(a)
	if err := Record(ctx, q, "opened:"+in.ID, in.ID, now, events.IncidentOpened, a.Resident, detail); err != nil {
		return events.Message{}, err
	}
	return Event(in, events.IncidentOpened, in.ID, a.Resident, now, detail)
}
