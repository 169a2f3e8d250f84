package plans

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/schedule"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// DrillSpec is what a drill practises: a real incident, flagged as a
// drill, run through matching, offers, the plan and texts, but only for the
// parties in its scope.
type DrillSpec struct {
	Type     string           `json:"type"`
	Severity string           `json:"severity,omitempty"` // I…IV; the type's default if empty
	Location *geo.Point       `json:"location,omitempty"` // the community's centre if empty
	Address  string           `json:"address,omitempty"`
	Scope    responders.Scope `json:"scope"`
	// Notice is told to the emergency center when the drill starts.
	Notice string `json:"notice,omitempty"`
	// TimeLimit ends the drill if no dispatcher has closed it, e.g. "30m".
	TimeLimit string `json:"time_limit,omitempty"`
}

// Drill limits.
const (
	DefaultDrillLimit = 30 * time.Minute
	maxDrillLimit     = 24 * time.Hour
)

func (s DrillSpec) limit() time.Duration {
	d, err := time.ParseDuration(s.TimeLimit)
	if err != nil || d <= 0 {
		return DefaultDrillLimit
	}
	return d
}

// Check validates a drill against the taxonomy and the community.
func (s DrillSpec) Check(ctx context.Context, q storage.Querier, tax *events.Taxonomy, community string) error {
	verr := &errdefs.ValidationError{}
	if _, ok := tax.Type(s.Type); !ok {
		verr.Add("type", "one of "+strings.Join(tax.TypeNames(), ", "))
	}
	if s.Severity != "" {
		if _, err := events.ParseSeverity(s.Severity); err != nil {
			verr.Add("severity", "I, II, III or IV")
		}
	}
	if s.Location != nil {
		if err := s.Location.Validate(); err != nil {
			verr.Add("location", err.Error())
		}
	}
	if utf8.RuneCountInString(s.Address) > 100 || incidents.HasControl(s.Address, false) {
		verr.Add("address", "at most 100 characters without control characters")
	}
	if utf8.RuneCountInString(s.Notice) > 140 || incidents.HasControl(s.Notice, false) {
		verr.Add("notice", "at most 140 characters without control characters")
	}
	if s.TimeLimit != "" {
		if d, err := time.ParseDuration(s.TimeLimit); err != nil || d < time.Minute || d > maxDrillLimit {
			verr.Add("time_limit", "a duration from 1m to 24h, e.g. 30m")
		}
	}
	if err := verr.OrNil(); err != nil {
		return err
	}
	return s.Scope.Check(ctx, q, community)
}

// DrillSchedule runs a drill at the times of a cron spec (Asia/Shanghai).
type DrillSchedule struct {
	ID        string `json:"id"`
	Community string `json:"community"`
	Spec      string `json:"spec"`
	DrillSpec
	Enabled   bool      `json:"enabled"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Drill is one drill: its spec, the incident it became and, once over,
// its after-action report.
type Drill struct {
	ID        string `json:"id"`
	Community string `json:"community"`
	Schedule  string `json:"schedule,omitempty"`
	DrillSpec
	Alarm     string       `json:"alarm"`
	Incident  string       `json:"incident"`
	StartedAt time.Time    `json:"started_at"`
	EndsAt    time.Time    `json:"ends_at"`
	EndedAt   time.Time    `json:"ended_at,omitzero"`
	Report    *DrillReport `json:"report,omitempty"`
	CreatedBy string       `json:"created_by,omitempty"`
}

// Drills starts drills, ends them and writes their after-action reports.
type Drills struct {
	DB         storage.DB
	Tax        *events.Taxonomy
	Relay      *events.Relay
	Dispatcher *responders.Dispatcher
	Log        *slog.Logger
	Now        func() time.Time
	LinkBase   string
}

// DrillJobPrefix names scheduled drill jobs: "drill:<schedule id>".
const DrillJobPrefix = "drill:"

// SaveSchedule stores a drill schedule after checking it.
func (d *Drills) SaveSchedule(ctx context.Context, s DrillSchedule) (DrillSchedule, error) {
	if _, err := schedule.ParseSpec(s.Spec); err != nil {
		return DrillSchedule{}, errdefs.Invalid("spec", err.Error())
	}
	if err := s.DrillSpec.Check(ctx, d.DB, d.Tax, s.Community); err != nil {
		return DrillSchedule{}, err
	}
	now := d.Now()
	if s.ID == "" {
		s.ID = strings.ToLower(events.NewID("ds", now))
	}
	s.CreatedAt = now.UTC()
	doc, err := json.Marshal(s.DrillSpec)
	if err != nil {
		return DrillSchedule{}, err
	}
	_, err = d.DB.Exec(ctx, `INSERT INTO drill_schedules (id, community_id, spec, doc, enabled, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, s.ID, s.Community, s.Spec, string(doc), s.Enabled, s.CreatedBy, now.UnixMilli())
	if storage.IsUniqueViolation(err) {
		return DrillSchedule{}, fmt.Errorf("drill schedule %s exists: %w", s.ID, errdefs.ErrConflict)
	}
	if err != nil {
		return DrillSchedule{}, fmt.Errorf("save drill schedule: %w", err)
	}
	return s, nil
}

func scanSchedule(row storage.Row) (DrillSchedule, error) {
	var s DrillSchedule
	var doc string
	var at int64
	if err := row.Scan(&s.ID, &s.Community, &s.Spec, &doc, &s.Enabled, &s.CreatedBy, &at); err != nil {
		return DrillSchedule{}, err
	}
	s.CreatedAt = time.UnixMilli(at).UTC()
	return s, json.Unmarshal([]byte(doc), &s.DrillSpec)
}

// Schedules lists drill schedules: one community's, or all with "".
func (d *Drills) Schedules(ctx context.Context, community string) ([]DrillSchedule, error) {
	rows, err := d.DB.Query(ctx, `SELECT id, community_id, spec, doc, enabled, created_by, created_at FROM drill_schedules
		WHERE community_id = $1 OR $1 = '' ORDER BY community_id, id`, community)
	if err != nil {
		return nil, fmt.Errorf("list drill schedules: %w", err)
	}
	defer rows.Close()
	out := []DrillSchedule{}
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, fmt.Errorf("read drill schedule: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DeleteSchedule removes a schedule; drills it started stay.
func (d *Drills) DeleteSchedule(ctx context.Context, community, id string) error {
	n, err := d.DB.Exec(ctx, `DELETE FROM drill_schedules WHERE id = $1 AND community_id = $2`, id, community)
	if err != nil {
		return fmt.Errorf("delete drill schedule %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("drill schedule %s: %w", id, errdefs.ErrNotFound)
	}
	return nil
}

// Jobs are the scheduler's jobs for the enabled drill schedules.
func (d *Drills) Jobs(ctx context.Context) ([]schedule.Job, error) {
	all, err := d.Schedules(ctx, "")
	if err != nil {
		return nil, err
	}
	var jobs []schedule.Job
	for _, s := range all {
		if s.Enabled {
			jobs = append(jobs, schedule.Job{Name: DrillJobPrefix + s.ID, Spec: s.Spec, Community: s.Community, Drill: true})
		}
	}
	return jobs, nil
}

// RunScheduled starts the drill of a fired schedule slot.
func (d *Drills) RunScheduled(ctx context.Context, f schedule.Fired) error {
	id := strings.TrimPrefix(f.Job, DrillJobPrefix)
	s, err := scanSchedule(d.DB.QueryRow(ctx, `SELECT id, community_id, spec, doc, enabled, created_by, created_at
		FROM drill_schedules WHERE id = $1`, id))
	if errors.Is(err, storage.ErrNoRows) {
		d.Log.Warn("scheduled drill was deleted before its slot", "schedule", id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("drill schedule %s: %w", id, err)
	}
	_, err = d.Start(ctx, s.Community, s.DrillSpec, s.ID+"@"+strconv.FormatInt(f.Slot.UnixMilli(), 10), s.ID, "schedule:"+s.ID)
	return err
}

// drillTimer is the payload of a drill's time-limit timer.
type drillTimer struct {
	Drill string `json:"drill"`
}

// Start begins a drill now. key makes it idempotent: the same key starts
// the same drill once (a schedule slot, a retried request).
func (d *Drills) Start(ctx context.Context, community string, spec DrillSpec, key, scheduleID, actor string) (Drill, error) {
	if err := spec.Check(ctx, d.DB, d.Tax, community); err != nil {
		return Drill{}, err
	}
	c, err := (&responders.Registry{DB: d.DB, Tax: d.Tax, Now: d.Now}).GetCommunity(ctx, community)
	if err != nil {
		return Drill{}, err
	}
	it, _ := d.Tax.Type(spec.Type)
	sum := sha256.Sum256([]byte(community + "\x00drill\x00" + key))
	id := events.StableID("dr", sum[:])
	if existing, err := d.Get(ctx, id); err == nil {
		return existing, nil
	}
	now := d.Now()
	where := c.Location
	if spec.Location != nil {
		where = *spec.Location
	}
	if spec.Address == "" {
		spec.Address = c.Name + "（演练）"
	}
	sev := it.Severity
	if spec.Severity != "" {
		sev, _ = events.ParseSeverity(spec.Severity)
	}
	resident := "drill:" + id
	alarm := incidents.Alarm{ID: incidents.AlarmID(community, resident, id), Community: community, Resident: resident, Key: id,
		Type: spec.Type, Location: where, HasLocation: true, Address: spec.Address, Note: spec.Notice, Drill: true,
		Severity: sev, ReceivedAt: now.UTC()}
	dr := Drill{ID: id, Community: community, Schedule: scheduleID, DrillSpec: spec, Alarm: alarm.ID,
		Incident: incidents.OpenedID(alarm.ID), StartedAt: now.UTC(), EndsAt: now.Add(spec.limit()).UTC(), CreatedBy: actor}
	doc, err := json.Marshal(spec)
	if err != nil {
		return Drill{}, err
	}
	err = d.Relay.Commit(ctx, func(q storage.Querier) ([]events.Message, error) {
		n, err := q.Exec(ctx, `INSERT INTO drills (id, community_id, schedule_id, doc, alarm_id, incident_id, started_at, ends_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
			dr.ID, community, scheduleID, string(doc), dr.Alarm, dr.Incident, now.UnixMilli(), dr.EndsAt.UnixMilli(), actor)
		if err != nil || n == 0 {
			return nil, err
		}
		am, err := incidents.AlarmMessage(alarm)
		if err != nil {
			return nil, err
		}
		ev, err := events.New("drill-end:"+id, "timer.drill", events.TimerSubjectDrill, community, now, drillTimer{Drill: id})
		if err != nil {
			return nil, err
		}
		ev.Drill = true
		tm, err := events.EventMessage(ev, dr.EndsAt)
		if err != nil {
			return nil, err
		}
		if err := events.Stage(ctx, q, now, am, tm); err != nil {
			return nil, err
		}
		staged := []events.Message{am, tm}
		center, ok, err := responders.OrgOfKind(ctx, q, community, responders.OrgEmergencyCenter)
		if err != nil || !ok {
			return staged, err
		}
		texts, err := sms.Queue(ctx, q, now, sms.Text{Key: "drill_started:" + id, Community: community, To: center.DutyPhone,
			Template: sms.TplDrillStarted, Locale: c.Locale, Drill: true, Purpose: "drill_started",
			Params: map[string]string{"community": c.Name, "type": it.Label.In(c.Locale), "limit": strconv.Itoa(int(spec.limit().Minutes())),
				"notice": spec.Notice, "link": d.reportLink(id)}})
		return append(staged, texts...), err
	})
	if err != nil {
		return Drill{}, fmt.Errorf("start drill: %w", err)
	}
	d.Log.Info("drill started", "drill", id, "community", community, "type", spec.Type, "incident", dr.Incident, "actor", actor)
	return d.Get(ctx, id)
}

func (d *Drills) reportLink(id string) string {
	return d.LinkBase + "/console/drills/" + url.PathEscape(id)
}

const drillColumns = `id, community_id, schedule_id, doc, alarm_id, incident_id, started_at, ends_at, ended_at, report, created_by`

func scanDrill(row storage.Row) (Drill, error) {
	var dr Drill
	var doc, report string
	var started, ends, ended int64
	if err := row.Scan(&dr.ID, &dr.Community, &dr.Schedule, &doc, &dr.Alarm, &dr.Incident, &started, &ends, &ended, &report, &dr.CreatedBy); err != nil {
		return Drill{}, err
	}
	if err := json.Unmarshal([]byte(doc), &dr.DrillSpec); err != nil {
		return Drill{}, fmt.Errorf("drill %s: %w", dr.ID, err)
	}
	dr.StartedAt, dr.EndsAt = time.UnixMilli(started).UTC(), time.UnixMilli(ends).UTC()
	if ended != 0 {
		dr.EndedAt = time.UnixMilli(ended).UTC()
	}
	if report != "" {
		dr.Report = &DrillReport{}
		if err := json.Unmarshal([]byte(report), dr.Report); err != nil {
			return Drill{}, fmt.Errorf("report of drill %s: %w", dr.ID, err)
		}
	}
	return dr, nil
}

// Get reads a drill.
func (d *Drills) Get(ctx context.Context, id string) (Drill, error) {
	dr, err := scanDrill(d.DB.QueryRow(ctx, `SELECT `+drillColumns+` FROM drills WHERE id = $1`, id))
	if errors.Is(err, storage.ErrNoRows) {
		return Drill{}, fmt.Errorf("drill %s: %w", id, errdefs.ErrNotFound)
	}
	return dr, err
}

// List lists a community's drills, newest first.
func (d *Drills) List(ctx context.Context, community string, limit int) ([]Drill, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := d.DB.Query(ctx, `SELECT `+drillColumns+` FROM drills WHERE community_id = $1 ORDER BY started_at DESC, id LIMIT $2`,
		community, limit)
	if err != nil {
		return nil, fmt.Errorf("list drills: %w", err)
	}
	defer rows.Close()
	out := []Drill{}
	for rows.Next() {
		dr, err := scanDrill(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, dr)
	}
	return out, rows.Err()
}

// HandleTimer ends a drill at its time limit, unless a dispatcher closed
// it first.
func (d *Drills) HandleTimer(ctx context.Context, ev events.Event) error {
	var p drillTimer
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	dr, err := d.Get(ctx, p.Drill)
	if err != nil {
		return err
	}
	in, err := incidents.Get(ctx, d.DB, dr.Incident)
	if errors.Is(err, errdefs.ErrNotFound) {
		// Intake has not opened it yet: it will, the alarm is in JetStream.
		return events.RetryAfter(time.Second, fmt.Errorf("drill %s: incident not open yet", dr.ID))
	}
	if err != nil {
		return err
	}
	if !in.Status.Active() {
		return nil
	}
	_, err = d.Dispatcher.Resolve(ctx, dr.Incident, "system: drill time limit")
	return err
}

// HandleClosed writes the after-action report when a drill's incident is
// resolved or cancelled, and texts the center a one-line summary.
func (d *Drills) HandleClosed(ctx context.Context, ev events.Event) error {
	if !ev.Drill {
		return nil
	}
	var p incidents.Payload
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	var id string
	err := d.DB.QueryRow(ctx, `SELECT id FROM drills WHERE incident_id = $1`, p.ID).Scan(&id)
	if errors.Is(err, storage.ErrNoRows) {
		return nil // a drill alarm from elsewhere: no drill to report on
	}
	if err != nil {
		return fmt.Errorf("drill of %s: %w", p.ID, err)
	}
	return d.Relay.Commit(ctx, func(q storage.Querier) ([]events.Message, error) {
		dr, err := scanDrill(q.QueryRow(ctx, `SELECT `+drillColumns+` FROM drills WHERE id = $1`, id))
		if err != nil {
			return nil, err
		}
		if dr.Report != nil {
			return nil, nil // written before
		}
		in, err := incidents.Get(ctx, q, dr.Incident)
		if err != nil {
			return nil, err
		}
		offers, err := d.Dispatcher.OffersIn(ctx, q, dr.Incident)
		if err != nil {
			return nil, err
		}
		duties, err := queryDuties(ctx, q, `WHERE incident_id = $1`, dr.Incident)
		if err != nil {
			return nil, err
		}
		now := d.Now()
		end := in.ClosedAt
		if end.IsZero() {
			end = now
		}
		rep := ComputeDrillReport(dr, in, offers, duties, end)
		doc, err := json.Marshal(rep)
		if err != nil {
			return nil, err
		}
		if _, err := q.Exec(ctx, `UPDATE drills SET ended_at = $2, report = $3 WHERE id = $1`, id, end.UnixMilli(), string(doc)); err != nil {
			return nil, fmt.Errorf("store report of drill %s: %w", id, err)
		}
		d.Log.Info("drill report written", "drill", id, "incident", dr.Incident, "offers", len(offers), "duties", len(duties))
		center, ok, err := responders.OrgOfKind(ctx, q, dr.Community, responders.OrgEmergencyCenter)
		if err != nil || !ok {
			return nil, err
		}
		it, _ := d.Tax.Type(dr.Type)
		first := "无"
		if rep.FirstAcceptS != nil {
			first = formatSeconds(*rep.FirstAcceptS)
		}
		return sms.Queue(ctx, q, now, sms.Text{Key: "drill_report:" + id, Community: dr.Community, Incident: dr.Incident,
			To: center.DutyPhone, Template: sms.TplDrillReport, Drill: true, Purpose: "drill_report",
			Params: map[string]string{"type": it.Label.ZH, "first": first, "rate": fmt.Sprintf("%.0f%%", rep.AcceptRate*100),
				"ontime": strconv.Itoa(rep.Duties.OnTime), "duties": strconv.Itoa(rep.Duties.Total - rep.Duties.Skipped),
				"silent": strconv.Itoa(len(rep.NeverAnswered)), "link": d.reportLink(id)}})
	})
}

func formatSeconds(s float64) string {
	if s < 120 {
		return fmt.Sprintf("%.0f 秒", s)
	}
	return fmt.Sprintf("%.1f 分钟", s/60)
}
