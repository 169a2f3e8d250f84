package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/storage"
)

const incidentColumns = `id, community_id, type, category, severity, status, lat, lng, address, reports,
	drill, wave, accepted, needed, opened_at, last_report_at, closed_at`

func scanIncident(row storage.Row) (Incident, error) {
	var in Incident
	var sev int
	var status string
	var opened, last, closed int64
	err := row.Scan(&in.ID, &in.Community, &in.Type, &in.Category, &sev, &status, &in.Location.Lat, &in.Location.Lng,
		&in.Address, &in.Reports, &in.Drill, &in.Wave, &in.Accepted, &in.Needed, &opened, &last, &closed)
	if err != nil {
		return Incident{}, err
	}
	in.Severity, in.Status = events.Severity(sev), Status(status)
	in.OpenedAt, in.LastReportAt = time.UnixMilli(opened).UTC(), time.UnixMilli(last).UTC()
	if closed > 0 {
		in.ClosedAt = time.UnixMilli(closed).UTC()
	}
	return in, nil
}

// Get reads one incident.
func Get(ctx context.Context, q storage.Querier, id string) (Incident, error) {
	in, err := scanIncident(q.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id))
	if errors.Is(err, storage.ErrNoRows) {
		return Incident{}, fmt.Errorf("incident %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("read incident %s: %w", id, err)
	}
	return in, nil
}

// Lock reads an incident inside a transaction and holds its row until the
// transaction ends, so handlers on several replicas change one incident one
// at a time.
func Lock(ctx context.Context, q storage.Querier, id string) (Incident, error) {
	in, err := scanIncident(q.QueryRow(ctx, `UPDATE incidents SET version = version + 1 WHERE id = $1 RETURNING `+incidentColumns, id))
	if errors.Is(err, storage.ErrNoRows) {
		return Incident{}, fmt.Errorf("incident %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("lock incident %s: %w", id, err)
	}
	return in, nil
}

// Save writes the mutable fields of an incident.
func Save(ctx context.Context, q storage.Querier, in Incident) error {
	var closed int64
	if !in.ClosedAt.IsZero() {
		closed = in.ClosedAt.UnixMilli()
	}
	_, err := q.Exec(ctx, `UPDATE incidents SET status = $2, severity = $3, reports = $4, wave = $5, accepted = $6,
		last_report_at = $7, closed_at = $8, drill = $9 WHERE id = $1`,
		in.ID, string(in.Status), int(in.Severity), in.Reports, in.Wave, in.Accepted, in.LastReportAt.UnixMilli(), closed, in.Drill)
	if err != nil {
		return fmt.Errorf("save incident %s: %w", in.ID, err)
	}
	return nil
}

// Entry is one line of an incident's timeline: who did what, when.
type Entry struct {
	At     time.Time       `json:"at"`
	Kind   string          `json:"kind"`
	Actor  string          `json:"actor,omitempty"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

// Record appends to an incident's timeline. id makes it idempotent: the
// same fact recorded twice (a redelivered event) is one line.
func Record(ctx context.Context, q storage.Querier, id, incident string, at time.Time, kind, actor string, detail any) error {
	raw := []byte("{}")
	if detail != nil {
		var err error
		if raw, err = json.Marshal(detail); err != nil {
			return fmt.Errorf("encode timeline detail: %w", err)
		}
	}
	if err := storage.Append(ctx, q, timelineRows, id, incident, at.UnixMilli(), kind, actor, string(raw)); err != nil {
		return fmt.Errorf("record %s on %s: %w", kind, incident, err)
	}
	return nil
}

// timelineRows are inserted when the recording transaction's function
// returns (storage.Append): nothing reads an incident's timeline in the
// transaction that adds to it.
var timelineRows = &storage.Appender{Insert: `INSERT INTO timeline (id, incident_id, at, kind, actor, detail)`, Cols: 6,
	Then: `ON CONFLICT (id) DO NOTHING`}

// Timeline lists an incident's timeline, oldest first.
func Timeline(ctx context.Context, q storage.Querier, incident string) ([]Entry, error) {
	rows, err := q.Query(ctx, `SELECT at, kind, actor, detail FROM timeline WHERE incident_id = $1 ORDER BY at, id`, incident)
	if err != nil {
		return nil, fmt.Errorf("timeline %s: %w", incident, err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var at int64
		var detail string
		if err := rows.Scan(&at, &e.Kind, &e.Actor, &detail); err != nil {
			return nil, err
		}
		e.At, e.Detail = time.UnixMilli(at).UTC(), json.RawMessage(detail)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Filter narrows a list of incidents. Empty fields match everything.
type Filter struct {
	Community string
	Status    string // a Status, or "active"
	Resident  string // only incidents this resident reported
	// Drills is "" or "include" (drills and real incidents), "exclude"
	// (real incidents only, for statistics) or "only".
	Drills string
	Limit  int
}

// List returns incidents, newest first.
func List(ctx context.Context, q storage.Querier, f Filter) ([]Incident, error) {
	sql := `SELECT ` + incidentColumns + ` FROM incidents WHERE 1=1`
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Community != "" {
		sql += ` AND community_id = ` + arg(f.Community)
	}
	switch f.Status {
	case "":
	case "active":
		sql += ` AND status IN ('open', 'responding', 'escalated')`
	default:
		sql += ` AND status = ` + arg(f.Status)
	}
	switch f.Drills {
	case "exclude":
		sql += ` AND drill = false`
	case "only":
		sql += ` AND drill = true`
	}
	if f.Resident != "" {
		c := arg(f.Community)
		r := arg(f.Resident)
		sql += ` AND id IN (SELECT incident_id FROM alarms WHERE community_id = ` + c + ` AND resident = ` + r + `)`
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	sql += ` ORDER BY opened_at DESC LIMIT ` + arg(f.Limit)
	out, err := queryIncidents(ctx, q, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return out, nil
}

func queryIncidents(ctx context.Context, q storage.Querier, sql string, args ...any) ([]Incident, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Incident{}
	for rows.Next() {
		in, err := scanIncident(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// ReportedBy reports whether resident pressed an alarm that belongs to the
// incident; residents may read only those.
func ReportedBy(ctx context.Context, q storage.Querier, incident, community, resident string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM alarms WHERE incident_id = $1 AND community_id = $2 AND resident = $3`,
		incident, community, resident).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("alarms of %s: %w", incident, err)
	}
	return n > 0, nil
}

// AlarmState is what a resident can learn about their press.
type AlarmState struct {
	ID         string    `json:"alarm_id"`
	Status     string    `json:"status"` // received, attached
	Type       string    `json:"type"`
	Incident   string    `json:"incident_id,omitempty"`
	Opened     bool      `json:"opened_incident"`
	ReceivedAt time.Time `json:"received_at"`
}

// GetAlarm reads a processed alarm of one resident.
func GetAlarm(ctx context.Context, q storage.Querier, id, community, resident string) (AlarmState, error) {
	var s AlarmState
	var at int64
	err := q.QueryRow(ctx, `SELECT id, type, incident_id, opened, received_at FROM alarms
		WHERE id = $1 AND community_id = $2 AND resident = $3`, id, community, resident).
		Scan(&s.ID, &s.Type, &s.Incident, &s.Opened, &at)
	if errors.Is(err, storage.ErrNoRows) {
		return AlarmState{}, fmt.Errorf("alarm %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return AlarmState{}, fmt.Errorf("read alarm %s: %w", id, err)
	}
	s.ReceivedAt, s.Status = time.UnixMilli(at).UTC(), "received"
	if s.Incident != "" {
		s.Status = "attached"
	}
	return s, nil
}

// communityCentre is where an alarm without a location is placed: the
// dispatcher still needs a point to search around.
func communityCentre(ctx context.Context, q storage.Querier, community string) (geo.Point, error) {
	var p geo.Point
	err := q.QueryRow(ctx, `SELECT lat, lng FROM communities WHERE id = $1`, community).Scan(&p.Lat, &p.Lng)
	if errors.Is(err, storage.ErrNoRows) {
		return p, fmt.Errorf("community %s: %w", community, errdefs.ErrNotFound)
	}
	return p, err
}
