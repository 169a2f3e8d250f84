package plans

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/links"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// Duty states.
const (
	DutyPending      = "pending" // waits for the steps it depends on
	DutyAssigned     = "assigned"
	DutyAcknowledged = "acknowledged"
	DutyDone         = "done"
	DutyOverdue      = "overdue" // not done in time; the center was texted
	DutySkipped      = "skipped" // a drill step for a party outside the drill's scope
)

// Duty is one plan step given to one party (an organisation, or a
// responder for a skill group), possibly about one vulnerable resident.
type Duty struct {
	ID           string       `json:"id"`
	Run          string       `json:"run"`
	Incident     string       `json:"incident"`
	Community    string       `json:"community"`
	Step         string       `json:"step"`
	Seq          int          `json:"seq"`
	Title        events.Label `json:"title"`
	Instructions events.Label `json:"instructions"`
	Assignee     string       `json:"assignee"`
	Org          string       `json:"org,omitempty"`
	Responder    string       `json:"responder,omitempty"`
	Resident     string       `json:"resident,omitempty"`
	Phone        string       `json:"-"`
	DueMinutes   float64      `json:"due_minutes"`
	DependsOn    []string     `json:"depends_on,omitempty"`
	Status       string       `json:"status"`
	AssignedAt   time.Time    `json:"assigned_at,omitzero"`
	DueAt        time.Time    `json:"due_at,omitzero"`
	AckedAt      time.Time    `json:"acknowledged_at,omitzero"`
	DoneAt       time.Time    `json:"done_at,omitzero"`
	OverdueAt    time.Time    `json:"overdue_at,omitzero"`
	AckedBy      string       `json:"acknowledged_by,omitempty"`
	DoneBy       string       `json:"done_by,omitempty"`
}

// Run is a plan started for an incident, with its duties.
type Run struct {
	ID      string       `json:"id"`
	Plan    string       `json:"plan"`
	Version int          `json:"version"`
	Title   events.Label `json:"title"`
	Started time.Time    `json:"started_at"`
	Duties  []Duty       `json:"duties"`
}

// Runner starts plans when incidents open and follows their duties. Like
// the dispatcher, every change runs in one transaction that locks the
// incident, and every handler is idempotent.
type Runner struct {
	DB       storage.DB
	Tax      *events.Taxonomy
	Store    *Store
	Relay    *events.Relay
	Log      *slog.Logger
	Now      func() time.Time
	LinkBase string
	LinkTTL  time.Duration
	// Index proposes responders for duties given to a skill; nil reads
	// them from the database.
	Index *responders.Index
}

func (r *Runner) tx(ctx context.Context, fn func(q storage.Querier, now time.Time) ([]events.Message, error)) error {
	return r.Relay.Commit(ctx, func(q storage.Querier) ([]events.Message, error) { return fn(q, r.Now()) })
}

// HandleIncident starts the most specific plan when an incident opens.
func (r *Runner) HandleIncident(ctx context.Context, ev events.Event) error {
	if ev.Type != "incident."+events.IncidentOpened {
		return nil
	}
	var p incidents.Payload
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	return r.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		in, err := incidents.Lock(ctx, q, p.ID)
		if err != nil {
			return nil, err
		}
		var runs int
		if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM plan_runs WHERE incident_id = $1`, in.ID).Scan(&runs); err != nil {
			return nil, err
		}
		if runs > 0 || !in.Status.Active() {
			return nil, nil // started already: a redelivery
		}
		all, err := r.Store.Latest(ctx, q)
		if err != nil {
			return nil, err
		}
		plan, ok := Pick(all, in.Community, in.Type, in.Severity)
		if !ok {
			return nil, nil
		}
		return r.activate(ctx, q, in, plan, now)
	})
}

func (r *Runner) activate(ctx context.Context, q storage.Querier, in incidents.Incident, plan Plan, now time.Time) ([]events.Message, error) {
	run := "run_" + strings.TrimPrefix(in.ID, "in_")
	title, _ := json.Marshal(plan.Title)
	if _, err := q.Exec(ctx, `INSERT INTO plan_runs (id, incident_id, plan_id, version, title, started_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		run, in.ID, plan.ID, plan.Version, string(title), now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("start plan %s for %s: %w", plan.ID, in.ID, err)
	}
	it, _ := r.Tax.Type(in.Type)
	var duties []Duty
	for seq, st := range plan.Steps {
		d := Duty{Run: run, Incident: in.ID, Community: in.Community, Step: st.ID, Seq: seq, Title: st.Title,
			Instructions: st.Instructions, Assignee: st.Assignee, DueMinutes: st.DueMinutes, DependsOn: st.DependsOn, Status: DutyPending}
		if st.ForEach != ForEachVulnerable {
			d.ID = fmt.Sprintf("du_%s_%s", strings.TrimPrefix(in.ID, "in_"), st.ID)
			duties = append(duties, d)
			continue
		}
		residents, err := responders.VulnerableNear(ctx, q, in.Community, in.Location, it.Correlation.RadiusM)
		if err != nil {
			return nil, err
		}
		for _, res := range residents {
			d := d
			d.ID = fmt.Sprintf("du_%s_%s_%s", strings.TrimPrefix(in.ID, "in_"), st.ID, res.ID)
			d.Resident = res.ID
			duties = append(duties, d)
		}
	}
	// The duties free to start are given out before they are written, so
	// that each is written once, already assigned: an insert, a read-back
	// and an update each were a fifth of a plan's start (issue 8).
	var give []given
	var orgs orgsRead
	skipped := false
	for i, d := range duties {
		if len(d.DependsOn) > 0 {
			continue
		}
		g, err := r.resolve(ctx, q, in, d, &orgs, now)
		if err != nil {
			return nil, err
		}
		duties[i] = g.d
		give = append(give, g)
		skipped = skipped || g.skipped
	}
	if err := insertDuties(ctx, q, duties); err != nil {
		return nil, err
	}
	detail := map[string]any{"plan": plan.ID, "version": plan.Version, "title": plan.Title.ZH, "duties": len(duties)}
	if err := incidents.Record(ctx, q, "plan_activated:"+in.ID, in.ID, now, "plan_activated", "system", detail); err != nil {
		return nil, err
	}
	ev, err := incidents.Event(in, "plan_activated", in.ID, "system", now, detail)
	if err != nil {
		return nil, err
	}
	staged := []events.Message{ev}
	if err := events.Stage(ctx, q, now, ev); err != nil {
		return nil, err
	}
	r.Log.Info("plan activated", "incident", in.ID, "plan", plan.ID, "version", plan.Version, "duties", len(duties))
	var texts []sms.Text
	for _, g := range give {
		m, err := r.announce(ctx, q, in, g, &texts, now)
		if err != nil {
			return nil, err
		}
		staged = append(staged, m...)
	}
	if skipped {
		// A skipped drill duty counts as done, which may free the steps
		// after it.
		more, err := r.releaseReady(ctx, q, in, run, &texts, now)
		if err != nil {
			return nil, err
		}
		staged = append(staged, more...)
	}
	m, err := sms.QueueAll(ctx, q, now, texts...)
	return append(staged, m...), err
}

// insertDuties writes a run's duties, many to a statement: one statement
// each was a fifth of a plan's start (issue 8).
func insertDuties(ctx context.Context, q storage.Querier, duties []Duty) error {
	const per, chunk = 19, 50 // parameters a duty; duties a statement
	for len(duties) > 0 {
		part := duties[:min(len(duties), chunk)]
		duties = duties[len(part):]
		args := make([]any, 0, per*len(part))
		for _, d := range part {
			deps, _ := json.Marshal(d.DependsOn)
			tl, _ := json.Marshal(d.Title)
			ins, _ := json.Marshal(d.Instructions)
			args = append(args, d.ID, d.Run, d.Incident, d.Community, d.Step, d.Seq, string(tl), string(ins), d.Assignee, d.Resident,
				d.DueMinutes, string(deps), d.Status, d.Org, d.Responder, d.Phone, ms(d.AssignedAt), ms(d.DueAt), ms(d.OverdueAt))
		}
		if _, err := q.Exec(ctx, `INSERT INTO duties (id, run_id, incident_id, community_id, step_id, seq, title, instructions,
			assignee, resident_id, due_minutes, depends_on, status, org_id, responder_id, phone, assigned_at, due_at, overdue_at)
			VALUES `+storage.Tuples(len(part), per), args...); err != nil {
			return fmt.Errorf("duties %s (and %d more): %w", part[0].ID, len(part)-1, err)
		}
	}
	return nil
}

// release assigns every pending duty of a run whose steps it depends on
// are all done.
func (r *Runner) release(ctx context.Context, q storage.Querier, in incidents.Incident, run string, now time.Time) ([]events.Message, error) {
	// The duties' texts share one message to the sender.
	var texts []sms.Text
	staged, err := r.releaseReady(ctx, q, in, run, &texts, now)
	if err != nil {
		return nil, err
	}
	m, err := sms.QueueAll(ctx, q, now, texts...)
	if err != nil {
		return nil, err
	}
	return append(staged, m...), nil
}

// releaseReady is release with the texts left on texts, for the caller to
// queue.
func (r *Runner) releaseReady(ctx context.Context, q storage.Querier, in incidents.Incident, run string, texts *[]sms.Text,
	now time.Time) ([]events.Message, error) {
	var staged []events.Message
	var orgs orgsRead
	// A skipped drill duty counts as done, which may release more: go
	// round until nothing changes.
	for progress := true; progress; {
		progress = false
		all, err := queryDuties(ctx, q, `WHERE run_id = $1`, run)
		if err != nil {
			return nil, err
		}
		done := map[string]bool{}
		open := map[string]bool{}
		for _, d := range all {
			if d.Status == DutyDone || d.Status == DutySkipped {
				done[d.Step] = true
			} else {
				open[d.Step] = true
			}
		}
		for _, d := range all {
			if d.Status != DutyPending {
				continue
			}
			ready := true
			for _, dep := range d.DependsOn {
				// A step is done when every duty made from it is done.
				if !done[dep] || open[dep] {
					ready = false
				}
			}
			if !ready {
				continue
			}
			m, skipped, err := r.assign(ctx, q, in, d, &orgs, texts, now)
			if err != nil {
				return nil, err
			}
			staged = append(staged, m...)
			progress = progress || skipped
		}
	}
	return staged, nil
}

// given is a duty resolved to its party, not yet announced.
type given struct {
	d Duty
	// skipped: a drill duty whose party is outside the drill's scope.
	// Nobody is texted, and the steps after it go on as if it were done.
	skipped bool
	res     responders.Resident // the resident a duty is about, if any
	locale  string              // of the text to the party
}

// assign gives a duty to its party and sets its deadline; the text that
// tells them goes on texts, for the caller to queue with the others. It
// reports whether it skipped the duty instead (a drill party out of scope).
func (r *Runner) assign(ctx context.Context, q storage.Querier, in incidents.Incident, d Duty, orgs *orgsRead, texts *[]sms.Text,
	now time.Time) ([]events.Message, bool, error) {
	g, err := r.resolve(ctx, q, in, d, orgs, now)
	if err != nil {
		return nil, false, err
	}
	d = g.d
	if _, err := q.Exec(ctx, `UPDATE duties SET status = $2, org_id = $3, responder_id = $4, phone = $5, assigned_at = $6,
		due_at = $7, overdue_at = $8 WHERE id = $1`, d.ID, d.Status, d.Org, d.Responder, d.Phone, ms(d.AssignedAt), ms(d.DueAt),
		ms(d.OverdueAt)); err != nil {
		return nil, false, fmt.Errorf("assign %s: %w", d.ID, err)
	}
	staged, err := r.announce(ctx, q, in, g, texts, now)
	return staged, g.skipped, err
}

// orgsRead holds the community's organisations once read, so that the
// duties given out together read them once: a read for each duty was
// three statements of a plan's start (issue 8).
type orgsRead struct {
	list []responders.Organisation
	read bool
}

// resolve finds a duty's party and sets its state, deadline and phone,
// writing nothing.
func (r *Runner) resolve(ctx context.Context, q storage.Querier, in incidents.Incident, d Duty, orgs *orgsRead, now time.Time) (given, error) {
	where := in.Location
	g := given{locale: "zh-CN"}
	if d.Resident != "" {
		rs, err := responders.ResidentIn(ctx, q, in.Community, d.Resident)
		if err != nil {
			return given{}, err
		}
		g.res = rs
		if rs.Location != nil {
			where = *rs.Location
		}
	}
	var scope *responders.Scope
	if in.Drill {
		var err error
		if scope, err = responders.ScopeOf(ctx, q, in.ID); err != nil {
			return given{}, err
		}
	}
	if skill, ok := strings.CutPrefix(d.Assignee, "skill:"); ok {
		near, err := responders.Nearest(ctx, r.Index, q, r.Tax, in.Community, where, 3000, skill, now, 1, scope)
		if err != nil {
			return given{}, err
		}
		if len(near) > 0 {
			d.Responder, d.Phone, g.locale = near[0].Responder.ID, near[0].Responder.Phone, near[0].Responder.Locale
		}
	} else {
		if !orgs.read {
			list, err := responders.Orgs(ctx, q, in.Community)
			if err != nil {
				return given{}, err
			}
			orgs.list, orgs.read = list, true
		}
		org, ok, inScope := responders.OrgOfKindAmong(orgs.list, d.Assignee, scope)
		if ok && !inScope {
			d.Status, d.AssignedAt = DutySkipped, now
			g.d, g.skipped = d, true
			return g, nil
		}
		if ok {
			d.Org, d.Phone = org.ID, org.DutyPhone
		}
	}
	d.Status, d.AssignedAt, d.DueAt = DutyAssigned, now, now.Add(time.Duration(d.DueMinutes*float64(time.Minute)))
	if d.Org == "" && d.Responder == "" {
		// Nobody to give it to: the center must know now, not at the deadline.
		d.Status, d.OverdueAt = DutyOverdue, now
	}
	g.d = d
	return g, nil
}

// announce tells everyone about a duty resolved and written: its party
// (the text goes on texts), the center when nobody could take it, the
// timeline and the bus; and it sets the deadline's timer.
func (r *Runner) announce(ctx context.Context, q storage.Querier, in incidents.Incident, g given, texts *[]sms.Text,
	now time.Time) ([]events.Message, error) {
	d := g.d
	if g.skipped {
		detail := map[string]any{"duty": d.ID, "step": d.Step, "title": d.Title.ZH, "assignee": d.Assignee}
		return nil, incidents.Record(ctx, q, "duty_skipped:"+d.ID, in.ID, now, "duty_skipped", "system", detail)
	}
	var staged []events.Message
	detail := map[string]any{"duty": d.ID, "step": d.Step, "title": d.Title.ZH, "assignee": d.Assignee, "org": d.Org,
		"responder": d.Responder, "resident": d.Resident, "due_at": d.DueAt}
	if d.Status == DutyOverdue {
		m, err := r.tellCenter(ctx, q, in, d, sms.TplDutyUnassigned, now)
		if err != nil {
			return nil, err
		}
		ev, err := incidents.Announce(ctx, q, in, "duty_unassigned:"+d.ID, "duty_unassigned", d.ID, "system", now, detail)
		if err != nil {
			return nil, err
		}
		return append(append(staged, m...), ev), nil
	}
	if d.Phone != "" {
		token, err := links.Issue(ctx, q, links.KindDuty, d.ID, in.Community, g.locale, now, now.Add(r.linkTTL()))
		if err != nil {
			return nil, err
		}
		params := r.params(in, d, g.locale)
		params["link"] = strings.TrimRight(r.LinkBase, "/") + "/o/" + token
		tpl := sms.TplDutyAssigned
		if d.Resident != "" {
			tpl = sms.TplDutyResident
			params["resident"], params["resident_address"] = g.res.Name, g.res.Address
			params["needs"], params["contact"] = orDash(g.res.Needs), orDash(g.res.Contact)
		}
		*texts = append(*texts, sms.Text{Key: "duty:" + d.ID, Community: in.Community, Incident: in.ID, To: d.Phone,
			Template: tpl, Params: params, Locale: g.locale, Drill: in.Drill, Purpose: "duty"})
	}
	tev, err := events.New("duty_due:"+d.ID, "timer.duty", events.TimerSubjectDuty, in.Community, now, dutyPayload{Duty: d.ID})
	if err != nil {
		return nil, err
	}
	tm, err := events.EventMessage(tev, d.DueAt)
	if err != nil {
		return nil, err
	}
	if err := incidents.Record(ctx, q, "duty_assigned:"+d.ID, in.ID, now, "duty_assigned", "system", detail); err != nil {
		return nil, err
	}
	ev, err := incidents.Event(in, "duty_assigned", d.ID, "system", now, detail)
	if err != nil {
		return nil, err
	}
	staged = append(staged, tm, ev)
	return staged, events.Stage(ctx, q, now, tm, ev)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func (r *Runner) linkTTL() time.Duration {
	if r.LinkTTL <= 0 {
		return 12 * time.Hour
	}
	return r.LinkTTL
}

func (r *Runner) params(in incidents.Incident, d Duty, locale string) map[string]string {
	address := in.Address
	if address == "" {
		address = fmt.Sprintf("%.5f,%.5f", in.Location.Lat, in.Location.Lng)
	}
	it, _ := r.Tax.Type(in.Type)
	plan := it.Label.In(locale) + "预案"
	if strings.HasPrefix(locale, "en") {
		plan = it.Label.In(locale) + " plan"
	}
	instructions := d.Instructions.In(locale)
	if instructions != "" && !strings.HasSuffix(instructions, "。") && !strings.HasSuffix(instructions, ".") {
		instructions += "。"
	}
	return map[string]string{"plan": plan, "title": d.Title.In(locale), "address": address, "instructions": instructions,
		"due": strconv.FormatFloat(d.DueMinutes, 'f', -1, 64), "ref": responders.Ref(in.ID), "assignee": d.Assignee}
}

// tellCenter texts the community's emergency center about a duty.
func (r *Runner) tellCenter(ctx context.Context, q storage.Querier, in incidents.Incident, d Duty, tpl string, now time.Time) ([]events.Message, error) {
	center, ok, err := responders.OrgOfKind(ctx, q, in.Community, responders.OrgEmergencyCenter)
	if err != nil || !ok || center.DutyPhone == "" {
		if err == nil {
			r.Log.Error("duty needs the emergency center but none is registered", "incident", in.ID, "duty", d.ID, "community", in.Community)
		}
		return nil, err
	}
	params := r.params(in, d, "zh-CN")
	if d.Org != "" {
		if org, err := orgName(ctx, q, d.Org); err == nil {
			params["assignee"] = org
		}
	}
	return sms.Queue(ctx, q, now, sms.Text{Key: tpl + ":" + d.ID, Community: in.Community, Incident: in.ID, To: center.DutyPhone,
		Template: tpl, Params: params, Drill: in.Drill, Purpose: tpl})
}

func orgName(ctx context.Context, q storage.Querier, id string) (string, error) {
	var name string
	err := q.QueryRow(ctx, `SELECT name FROM organisations WHERE id = $1`, id).Scan(&name)
	return name, err
}

type dutyPayload struct {
	Duty string `json:"duty"`
}

// HandleDutyTimer marks a duty overdue at its deadline if it is not done,
// and texts the emergency center.
func (r *Runner) HandleDutyTimer(ctx context.Context, ev events.Event) error {
	var p dutyPayload
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	return r.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		d, in, err := r.lockDuty(ctx, q, p.Duty)
		if err != nil {
			return nil, err
		}
		if (d.Status != DutyAssigned && d.Status != DutyAcknowledged) || now.Before(d.DueAt) || !in.Status.Active() {
			return nil, nil
		}
		if _, err := q.Exec(ctx, `UPDATE duties SET status = $2, overdue_at = $3 WHERE id = $1`, d.ID, DutyOverdue, now.UnixMilli()); err != nil {
			return nil, err
		}
		staged, err := r.tellCenter(ctx, q, in, d, sms.TplDutyOverdue, now)
		if err != nil {
			return nil, err
		}
		r.Log.Warn("duty overdue", "incident", in.ID, "duty", d.ID, "step", d.Step)
		detail := map[string]any{"duty": d.ID, "step": d.Step, "title": d.Title.ZH, "org": d.Org, "acknowledged": !d.AckedAt.IsZero()}
		if err := incidents.Record(ctx, q, "duty_overdue:"+d.ID, in.ID, now, "duty_overdue", "system", detail); err != nil {
			return nil, err
		}
		ev, err := incidents.Event(in, "duty_overdue", d.ID, "system", now, detail)
		if err != nil {
			return nil, err
		}
		return append(staged, ev), events.Stage(ctx, q, now, ev)
	})
}

// Outcomes of acting on a duty.
const (
	OutcomeAcknowledged = "acknowledged"
	OutcomeDone         = "done"
)

// Act acknowledges a duty or marks it done, by whoever acted (an org user,
// a text, a link). Doing it twice is harmless.
func (r *Runner) Act(ctx context.Context, dutyID string, done bool, actor string) (Duty, string, error) {
	var outcome string
	err := r.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		d, in, err := r.lockDuty(ctx, q, dutyID)
		if err != nil {
			return nil, err
		}
		staged, out, err := r.act(ctx, q, in, d, done, actor, now)
		outcome = out
		return staged, err
	})
	if err != nil {
		return Duty{}, "", err
	}
	d, err := r.Get(ctx, dutyID)
	return d, outcome, err
}

func (r *Runner) act(ctx context.Context, q storage.Querier, in incidents.Incident, d Duty, done bool, actor string, now time.Time) ([]events.Message, string, error) {
	switch {
	case d.Status == DutyPending:
		return nil, "", fmt.Errorf("duty %s waits for the steps before it: %w", d.ID, errdefs.ErrConflict)
	case d.Status == DutyDone:
		return nil, OutcomeDone, nil
	case !done && !d.AckedAt.IsZero():
		return nil, OutcomeAcknowledged, nil
	}
	kind, tpl, outcome := "duty_acknowledged", sms.TplDutyAckConfirm, OutcomeAcknowledged
	if done {
		kind, tpl, outcome = "duty_done", sms.TplDutyDone, OutcomeDone
		status := DutyDone
		if _, err := q.Exec(ctx, `UPDATE duties SET status = $2, done_at = $3, done_by = $4,
			acked_at = CASE WHEN acked_at = 0 THEN $3 ELSE acked_at END WHERE id = $1`, d.ID, status, now.UnixMilli(), actor); err != nil {
			return nil, "", err
		}
	} else {
		status := d.Status
		if status == DutyAssigned {
			status = DutyAcknowledged // overdue stays overdue: it was late
		}
		if _, err := q.Exec(ctx, `UPDATE duties SET status = $2, acked_at = $3, acked_by = $4 WHERE id = $1`,
			d.ID, status, now.UnixMilli(), actor); err != nil {
			return nil, "", err
		}
	}
	var staged []events.Message
	if d.Phone != "" {
		params := r.params(in, d, "zh-CN")
		m, err := sms.Queue(ctx, q, now, sms.Text{Key: tpl + ":" + d.ID, Community: in.Community, Incident: in.ID, To: d.Phone,
			Template: tpl, Params: params, Drill: in.Drill, Purpose: tpl})
		if err != nil {
			return nil, "", err
		}
		staged = append(staged, m...)
	}
	r.Log.Info("duty "+outcome, "incident", in.ID, "duty", d.ID, "step", d.Step)
	detail := map[string]any{"duty": d.ID, "step": d.Step, "title": d.Title.ZH, "org": d.Org}
	if err := incidents.Record(ctx, q, kind+":"+d.ID, in.ID, now, kind, actor, detail); err != nil {
		return nil, "", err
	}
	ev, err := incidents.Event(in, kind, d.ID, actor, now, detail)
	if err != nil {
		return nil, "", err
	}
	if err := events.Stage(ctx, q, now, ev); err != nil {
		return nil, "", err
	}
	staged = append(staged, ev)
	if done {
		more, err := r.release(ctx, q, in, d.Run, now)
		if err != nil {
			return nil, "", err
		}
		staged = append(staged, more...)
	}
	return staged, outcome, nil
}

// Reply applies a text from a duty phone: "1" acknowledges the latest duty
// not yet acknowledged, "完成" marks the latest open duty done. It reports
// handled=false when the phone has no such duty, so the text can mean
// something else (a responder's answer to an offer).
func (r *Runner) Reply(ctx context.Context, q storage.Querier, in sms.Inbound, reply sms.Reply, now time.Time) ([]events.Message, string, bool, error) {
	var where string
	switch reply {
	case sms.ReplyAccept:
		where = `d.status IN ('assigned', 'overdue') AND d.acked_at = 0`
	case sms.ReplyDone:
		where = `d.status IN ('assigned', 'acknowledged', 'overdue')`
	default:
		return nil, "", false, nil
	}
	var id string
	err := q.QueryRow(ctx, `SELECT d.id FROM duties d JOIN incidents i ON i.id = d.incident_id
		WHERE d.phone = $1 AND `+where+` AND i.status IN ('open', 'responding', 'escalated')
		ORDER BY d.assigned_at DESC, d.id DESC LIMIT 1`, in.From).Scan(&id)
	if errors.Is(err, storage.ErrNoRows) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, err
	}
	d, inc, err := r.lockDuty(ctx, q, id)
	if err != nil {
		return nil, "", false, err
	}
	staged, outcome, err := r.act(ctx, q, inc, d, reply == sms.ReplyDone, "duty phone by sms", now)
	return staged, outcome, true, err
}

// lockDuty reads a duty and locks its incident.
func (r *Runner) lockDuty(ctx context.Context, q storage.Querier, id string) (Duty, incidents.Incident, error) {
	d, err := getDuty(ctx, q, id)
	if err != nil {
		return Duty{}, incidents.Incident{}, err
	}
	in, err := incidents.Lock(ctx, q, d.Incident)
	if err != nil {
		return Duty{}, incidents.Incident{}, err
	}
	d, err = getDuty(ctx, q, id) // again, under the lock
	return d, in, err
}

// Get reads one duty.
func (r *Runner) Get(ctx context.Context, id string) (Duty, error) { return getDuty(ctx, r.DB, id) }

// RunOf returns the plan run of an incident, if a plan started.
func (r *Runner) RunOf(ctx context.Context, incident string) (*Run, error) {
	var run Run
	var title string
	var started int64
	err := r.DB.QueryRow(ctx, `SELECT id, plan_id, version, title, started_at FROM plan_runs WHERE incident_id = $1`, incident).
		Scan(&run.ID, &run.Plan, &run.Version, &title, &started)
	if errors.Is(err, storage.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("plan run of %s: %w", incident, err)
	}
	_ = json.Unmarshal([]byte(title), &run.Title)
	run.Started = time.UnixMilli(started).UTC()
	if run.Duties, err = queryDuties(ctx, r.DB, `WHERE run_id = $1`, run.ID); err != nil {
		return nil, err
	}
	return &run, nil
}

// DutyFilter selects duties for a list.
type DutyFilter struct {
	Community string
	Org       string
	Responder string
	OpenOnly  bool
}

// List lists duties, newest first.
func (r *Runner) List(ctx context.Context, f DutyFilter) ([]Duty, error) {
	where := `WHERE community_id = $1`
	args := []any{f.Community}
	if f.Org != "" {
		args = append(args, f.Org)
		where += fmt.Sprintf(` AND org_id = $%d`, len(args))
	}
	if f.Responder != "" {
		args = append(args, f.Responder)
		where += fmt.Sprintf(` AND responder_id = $%d`, len(args))
	}
	if f.OpenOnly {
		where += ` AND status IN ('assigned', 'acknowledged', 'overdue')`
	}
	return queryDuties(ctx, r.DB, where+` ORDER BY assigned_at DESC, id LIMIT 500`, args...)
}

func getDuty(ctx context.Context, q storage.Querier, id string) (Duty, error) {
	ds, err := queryDuties(ctx, q, `WHERE id = $1`, id)
	if err != nil {
		return Duty{}, err
	}
	if len(ds) == 0 {
		return Duty{}, fmt.Errorf("duty %s: %w", id, errdefs.ErrNotFound)
	}
	return ds[0], nil
}

func queryDuties(ctx context.Context, q storage.Querier, where string, args ...any) ([]Duty, error) {
	if !strings.Contains(where, "ORDER BY") {
		where += ` ORDER BY seq, id`
	}
	rows, err := q.Query(ctx, `SELECT id, run_id, incident_id, community_id, step_id, seq, title, instructions, assignee, org_id,
		responder_id, resident_id, phone, due_minutes, depends_on, status, assigned_at, due_at, acked_at, done_at, overdue_at,
		acked_by, done_by FROM duties `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("query duties: %w", err)
	}
	defer rows.Close()
	out := []Duty{}
	for rows.Next() {
		var d Duty
		var title, ins, deps string
		var assigned, due, acked, done, overdue int64
		if err := rows.Scan(&d.ID, &d.Run, &d.Incident, &d.Community, &d.Step, &d.Seq, &title, &ins, &d.Assignee, &d.Org,
			&d.Responder, &d.Resident, &d.Phone, &d.DueMinutes, &deps, &d.Status, &assigned, &due, &acked, &done, &overdue,
			&d.AckedBy, &d.DoneBy); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(title), &d.Title)
		_ = json.Unmarshal([]byte(ins), &d.Instructions)
		_ = json.Unmarshal([]byte(deps), &d.DependsOn)
		d.AssignedAt, d.DueAt, d.AckedAt, d.DoneAt, d.OverdueAt = at(assigned), at(due), at(acked), at(done), at(overdue)
		out = append(out, d)
	}
	return out, rows.Err()
}

func at(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
