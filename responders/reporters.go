package responders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/links"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// The people who pressed are kept informed: received, someone is coming,
// someone is there. They can call it off if they are safe.

// reporter is a registered resident who pressed for an incident and can be
// texted.
type reporter struct {
	ID, Community, Phone, Locale string
}

func reportersOf(ctx context.Context, q storage.Querier, incident string) ([]reporter, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT r.id, r.community_id, r.phone, r.locale FROM alarms a
		JOIN residents r ON r.id = a.resident AND r.community_id = a.community_id
		WHERE a.incident_id = $1 AND r.phone <> '' ORDER BY r.id`, incident)
	if err != nil {
		return nil, fmt.Errorf("reporters of %s: %w", incident, err)
	}
	defer rows.Close()
	var out []reporter
	for rows.Next() {
		var r reporter
		if err := rows.Scan(&r.ID, &r.Community, &r.Phone, &r.Locale); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// tellReporters texts every reporter of an incident once per key.
func (d *Dispatcher) tellReporters(ctx context.Context, q storage.Querier, in incidents.Incident, key, tpl string,
	extra map[string]string, distanceM float64, now time.Time) ([]events.Message, error) {
	rs, err := reportersOf(ctx, q, in.ID)
	if err != nil {
		return nil, err
	}
	it, _ := d.Tax.Type(in.Type)
	var staged []events.Message
	for _, r := range rs {
		params := d.params(in, it, r.Locale, distanceM)
		for k, v := range extra {
			params[k] = v
		}
		m, err := d.notify(ctx, q, now, sms.Text{Key: key + ":" + r.ID, Community: in.Community, Incident: in.ID, To: r.Phone,
			Template: tpl, Params: params, Locale: r.Locale, Drill: in.Drill, Purpose: tpl})
		if err != nil {
			return nil, err
		}
		staged = append(staged, m...)
	}
	return staged, nil
}

// HandleReported tells a registered resident their press was received,
// with a link to say they are safe. It runs on opened and report_added.
func (d *Dispatcher) HandleReported(ctx context.Context, ev events.Event) error {
	var p struct {
		incidents.Payload
		Detail struct {
			AlarmID string `json:"alarm_id"`
		} `json:"detail"`
	}
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	if p.Detail.AlarmID == "" {
		return nil
	}
	// Many presses need no text (no phone registered, or told already):
	// look first without a write transaction, which on SQLite waits for
	// the one writer (issue 8).
	var resident, phone, locale, alarmKey, address string
	err := d.DB.QueryRow(ctx, `SELECT r.id, r.phone, r.locale, a.idem_key, a.address FROM alarms a
		JOIN residents r ON r.id = a.resident AND r.community_id = a.community_id WHERE a.id = $1`, p.Detail.AlarmID).
		Scan(&resident, &phone, &locale, &alarmKey, &address)
	if errors.Is(err, storage.ErrNoRows) || (err == nil && phone == "") {
		return nil // not registered, or no phone: the page shows the status instead
	}
	if err != nil {
		return fmt.Errorf("resident of %s: %w", p.Detail.AlarmID, err)
	}
	key := "received:" + p.ID + ":" + resident
	told := func(q storage.Querier) (bool, error) {
		var seen int
		err := q.QueryRow(ctx, `SELECT COUNT(*) FROM sms_outbox WHERE dedup_key = $1`, key).Scan(&seen)
		return seen > 0, err
	}
	if done, err := told(d.DB); err != nil || done {
		return err
	}
	return d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		// Again inside: another delivery may have told them meanwhile.
		if done, err := told(q); err != nil || done {
			return nil, err
		}
		in, err := incidents.Get(ctx, q, p.ID)
		if err != nil {
			return nil, err
		}
		token, err := links.Issue(ctx, q, links.KindAlarm, p.Detail.AlarmID, in.Community, locale, now, now.Add(24*time.Hour))
		if err != nil {
			return nil, err
		}
		it, _ := d.Tax.Type(in.Type)
		params := d.params(in, it, locale, -1)
		params["link"] = d.link(token)
		tpl := sms.TplAlarmReceived
		if byText(alarmKey) {
			// The alarm is at the registered address, which nobody
			// confirmed by pressing: say it, so a wrong one is noticed.
			tpl = sms.TplSMSAlarmReceived
			if address != "" {
				params["address"] = address
			}
		}
		return d.notify(ctx, q, now, sms.Text{Key: key, Community: in.Community, Incident: in.ID, To: phone,
			Template: tpl, Params: params, Locale: locale, Drill: in.Drill, Purpose: "alarm_received"})
	})
}

// residentSafeByPhone takes "我安全" from a resident's phone: it applies to
// their latest active incident.
func (d *Dispatcher) residentSafeByPhone(ctx context.Context, q storage.Querier, in sms.Inbound, now time.Time) ([]events.Message, string, error) {
	var alarmID string
	err := q.QueryRow(ctx, `SELECT a.id FROM alarms a
		JOIN residents r ON r.id = a.resident AND r.community_id = a.community_id
		JOIN incidents i ON i.id = a.incident_id
		WHERE r.phone = $1 AND i.status IN ('open', 'responding', 'escalated')
		ORDER BY a.received_at DESC, a.id DESC LIMIT 1`, in.From).Scan(&alarmID)
	if errors.Is(err, storage.ErrNoRows) {
		var locale string
		err := q.QueryRow(ctx, `SELECT locale FROM residents WHERE phone = $1 LIMIT 1`, in.From).Scan(&locale)
		if errors.Is(err, storage.ErrNoRows) {
			return nil, OutcomeNotKnown, nil
		}
		if err != nil {
			return nil, "", err
		}
		m, err := d.notify(ctx, q, now, sms.Text{Key: "reply:" + in.SID, To: in.From, Template: sms.TplNoOpenOffer, Locale: locale, Purpose: "reply"})
		return m, OutcomeNoOffer, err
	}
	if err != nil {
		return nil, "", fmt.Errorf("latest alarm of a resident: %w", err)
	}
	return d.reporterSafe(ctx, q, alarmID, "by sms", now)
}

// CancelByReporter applies "I am safe" from the resident who pressed
// alarmID (by one-tap link). It returns the incident and the outcome.
func (d *Dispatcher) CancelByReporter(ctx context.Context, alarmID, how string) (incidents.Incident, string, error) {
	var outcome, incidentID string
	err := d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		staged, out, err := d.reporterSafe(ctx, q, alarmID, how, now)
		outcome = out
		if err == nil {
			err = q.QueryRow(ctx, `SELECT incident_id FROM alarms WHERE id = $1`, alarmID).Scan(&incidentID)
		}
		return staged, err
	})
	if err != nil {
		return incidents.Incident{}, "", err
	}
	in, err := incidents.Get(ctx, d.DB, incidentID)
	return in, outcome, err
}

// reporterSafe cancels the incident when the resident is the only one who
// called about it; when others called too, their calls still stand and
// the resident's safety is only noted.
func (d *Dispatcher) reporterSafe(ctx context.Context, q storage.Querier, alarmID, how string, now time.Time) ([]events.Message, string, error) {
	var incidentID, community, resident string
	err := q.QueryRow(ctx, `SELECT incident_id, community_id, resident FROM alarms WHERE id = $1`, alarmID).
		Scan(&incidentID, &community, &resident)
	if errors.Is(err, storage.ErrNoRows) {
		return nil, "", fmt.Errorf("alarm %s: %w", alarmID, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, "", err
	}
	in, err := incidents.Lock(ctx, q, incidentID)
	if err != nil {
		return nil, "", err
	}
	if !in.Status.Active() {
		return nil, OutcomeClosed, nil
	}
	actor := "resident:" + resident + " " + how
	var others int
	if err := q.QueryRow(ctx, `SELECT COUNT(DISTINCT resident) FROM alarms WHERE incident_id = $1 AND resident <> $2`,
		in.ID, resident).Scan(&others); err != nil {
		return nil, "", err
	}
	var phone, locale string
	err = q.QueryRow(ctx, `SELECT phone, locale FROM residents WHERE id = $1 AND community_id = $2`, resident, community).Scan(&phone, &locale)
	if err != nil && !errors.Is(err, storage.ErrNoRows) {
		return nil, "", err
	}
	tell := func(tpl string) ([]events.Message, error) {
		if phone == "" {
			return nil, nil
		}
		it, _ := d.Tax.Type(in.Type)
		return d.notify(ctx, q, now, sms.Text{Key: "safe:" + in.ID + ":" + resident, Community: in.Community, Incident: in.ID,
			To: phone, Template: tpl, Params: d.params(in, it, locale, -1), Locale: locale, Drill: in.Drill, Purpose: tpl})
	}
	if others > 0 {
		ev, err := incidents.Announce(ctx, q, in, "reporter_safe:"+in.ID+":"+resident, "reporter_safe", in.ID+":"+resident, actor, now,
			map[string]any{"resident": resident, "other_reporters": others})
		if err != nil {
			return nil, "", err
		}
		m, err := tell(sms.TplSafeNoted)
		return append(m, ev), OutcomeSafeNoted, err
	}
	staged, err := d.closeLocked(ctx, q, &in, actor, incidents.StatusCancelled, events.IncidentCancelled, sms.TplCancelled, nil, now)
	if err != nil {
		return nil, "", err
	}
	m, err := tell(sms.TplSafeCancelled)
	return append(staged, m...), OutcomeCancelled, err
}
