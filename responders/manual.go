package responders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/links"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// A dispatcher's hands on an incident, from the console: start the next
// wave now, send someone by hand, call it a false alarm or a drill. Like
// every Dispatcher method each runs in one transaction that locks the
// incident; each goes on the timeline with the dispatcher as actor and
// emits an incident event, so every open console sees it. A closed
// incident is not changed: ErrConflict.

// Reasons an incident was cancelled from the console, in the detail of its
// cancelled event.
const (
	ReasonFalseAlarm = "false_alarm"
	ReasonDrill      = "drill"
)

// auditIncident records a change made to an incident by hand in the audit
// log, in the transaction that makes it: action "incident.<verb>".
func auditIncident(ctx context.Context, q storage.Querier, in incidents.Incident, actor, verb string, now time.Time,
	detail map[string]any) error {
	return audit.Record(ctx, q, audit.Entry{At: now, Actor: actor, Community: in.Community, Action: "incident." + verb,
		ObjectKind: "incident", ObjectID: in.ID, Detail: detail})
}

// lockActive locks an incident that must still need people.
func lockActive(ctx context.Context, q storage.Querier, id string) (incidents.Incident, error) {
	in, err := incidents.Lock(ctx, q, id)
	if err != nil {
		return in, err
	}
	if !in.Status.Active() {
		return in, fmt.Errorf("incident %s is %s already: %w", in.ID, in.Status, errdefs.ErrConflict)
	}
	return in, nil
}

// Redispatch expires the open offers of the current wave and starts the
// next wave now instead of at its timer. When every wave of the type was
// used, one more goes out, wider again; when it finds nobody the emergency
// center is told, as after the last wave. A late yes to an expired offer
// still counts.
func (d *Dispatcher) Redispatch(ctx context.Context, incidentID, actor string) (incidents.Incident, error) {
	err := d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		in, err := lockActive(ctx, q, incidentID)
		if err != nil {
			return nil, err
		}
		if in.Accepted >= in.Needed {
			return nil, fmt.Errorf("incident %s has the %d responders it needs: %w", in.ID, in.Needed, errdefs.ErrConflict)
		}
		it, ok := d.Tax.Type(in.Type)
		if !ok {
			return nil, fmt.Errorf("incident %s: unknown type %s", in.ID, in.Type)
		}
		n, err := q.Exec(ctx, `UPDATE offers SET status = $3 WHERE incident_id = $1 AND wave = $2 AND status = $4`,
			in.ID, in.Wave, OfferExpired, OfferOffered)
		if err != nil {
			return nil, fmt.Errorf("expire wave %d of %s: %w", in.Wave, in.ID, err)
		}
		noteOffers(q, in, OfferExpired, n)
		key := fmt.Sprintf("%s:%d", in.ID, in.Wave)
		ev, err := incidents.Announce(ctx, q, in, "redispatched:"+key, events.IncidentRedispatched, key, actor, now,
			map[string]any{"from_wave": in.Wave, "expired": n})
		if err != nil {
			return nil, err
		}
		d.Log.Info("redispatched by hand", "incident", in.ID, "from_wave", in.Wave, "expired", n, "actor", actor)
		if err := auditIncident(ctx, q, in, actor, "redispatch", now, map[string]any{"from_wave": in.Wave, "expired": n}); err != nil {
			return nil, err
		}
		more, err := d.waves(ctx, q, in, it, in.Wave+1, max(it.Dispatch.Waves, in.Wave+1), now)
		return append([]events.Message{ev}, more...), err
	})
	if err != nil {
		return incidents.Incident{}, err
	}
	return incidents.Get(ctx, d.DB, incidentID)
}

// Assign sends a responder of the incident's community by hand: the
// dispatcher reached them another way (a phone call) and they agreed. Their
// offer is accepted at once and they are marked busy; they are texted a
// confirmation with a one-tap link, and the people who called are told
// someone is coming, as for an acceptance. A responder busy with another
// incident is a conflict; assigning the same person twice changes nothing.
func (d *Dispatcher) Assign(ctx context.Context, incidentID, responderID, actor string) (Offer, error) {
	var offerID string
	err := d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		in, err := lockActive(ctx, q, incidentID)
		if err != nil {
			return nil, err
		}
		r, err := scanResponder(q.QueryRow(ctx, `SELECT `+responderColumns+` FROM responders WHERE id = $1 AND community_id = $2`,
			responderID, in.Community))
		if errors.Is(err, storage.ErrNoRows) {
			return nil, errdefs.Invalid("responder", "no responder with this id in the incident's community")
		}
		if err != nil {
			return nil, fmt.Errorf("responder %s: %w", responderID, err)
		}
		// Only a free responder, or one already on this incident, may be
		// sent; the condition holds under concurrent assignments too.
		n, err := q.Exec(ctx, `UPDATE responders SET busy_incident = $2 WHERE id = $1 AND busy_incident IN ('', $2)`, r.ID, in.ID)
		if err != nil {
			return nil, fmt.Errorf("mark %s busy: %w", r.ID, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("responder %s is busy with incident %s: %w", r.ID, r.BusyIncident, errdefs.ErrConflict)
		}
		existing, err := queryOffers(ctx, q, `WHERE o.incident_id = $1 AND o.responder_id = $2`, in.ID, r.ID)
		if err != nil {
			return nil, err
		}
		distance := geo.DistanceM(r.Location, in.Location)
		var o Offer
		switch {
		case len(existing) > 0 && existing[0].Status == OfferAccepted:
			offerID = existing[0].ID
			return nil, nil // sent already
		case len(existing) > 0:
			// Asked before by text: the answer came by phone instead.
			o = existing[0]
			if err := d.setOffer(ctx, q, in, o, OfferAccepted, now); err != nil {
				return nil, err
			}
		default:
			// Never offered: not counted among the offers that went out.
			o = Offer{ID: events.NewID("of", now), Incident: in.ID, Responder: r.ID, Name: r.Name, Phone: r.Phone,
				Locale: r.Locale, Wave: in.Wave, DistanceM: distance}
			if _, err := q.Exec(ctx, `INSERT INTO offers (id, incident_id, responder_id, wave, status, distance_m, created_at, answered_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, o.ID, in.ID, r.ID, o.Wave, OfferAccepted, distance, now.UnixMilli()); err != nil {
				return nil, fmt.Errorf("assign %s to %s: %w", r.ID, in.ID, err)
			}
		}
		offerID = o.ID
		in.Accepted++
		in.Status = incidents.StatusResponding

		token, err := links.Issue(ctx, q, links.KindOffer, o.ID, in.Community, r.Locale, now, now.Add(d.linkTTL()))
		if err != nil {
			return nil, err
		}
		it, _ := d.Tax.Type(in.Type)
		params := d.params(in, it, r.Locale, distance)
		params["link"] = d.link(token)
		staged, err := d.notify(ctx, q, now, sms.Text{Key: "assign:" + o.ID, Community: in.Community, Incident: in.ID, Offer: o.ID,
			To: r.Phone, Template: sms.TplManualAssign, Params: params, Locale: r.Locale, Drill: in.Drill, Purpose: sms.TplManualAssign})
		if err != nil {
			return nil, err
		}
		ev, err := incidents.Announce(ctx, q, in, "assigned:"+o.ID, events.IncidentAssigned, o.ID, actor, now,
			map[string]any{"offer": o.ID, "responder": r.ID, "name": r.Name, "distance_m": int(distance),
				"accepted": in.Accepted, "needed": in.Needed})
		if err != nil {
			return nil, err
		}
		staged = append(staged, ev)
		told, err := d.tellReporters(ctx, q, in, "coming:"+o.ID, sms.TplResponderComing, map[string]string{"name": r.Name}, distance, now)
		if err != nil {
			return nil, err
		}
		staged = append(staged, told...)
		if in.Accepted >= in.Needed {
			msgs, err := d.standDown(ctx, q, in, sms.TplStandDown, now)
			if err != nil {
				return nil, err
			}
			staged = append(staged, msgs...)
		}
		d.Log.Info("responder assigned by hand", "incident", in.ID, "offer", o.ID, "responder", r.ID, "actor", actor)
		if err := auditIncident(ctx, q, in, actor, "assign", now, map[string]any{"responder": r.ID, "offer": o.ID}); err != nil {
			return nil, err
		}
		return staged, incidents.Save(ctx, q, in)
	})
	if err != nil {
		return Offer{}, err
	}
	return getOffer(ctx, d.DB, offerID)
}

// FalseAlarm cancels an incident the dispatcher found to be a false alarm:
// everyone asked or on the way is stood down and freed.
func (d *Dispatcher) FalseAlarm(ctx context.Context, incidentID, actor string) (incidents.Incident, error) {
	return d.cancelByHand(ctx, incidentID, actor, ReasonFalseAlarm, sms.TplFalseAlarm)
}

// MarkDrill marks an incident as a drill, which leaves it out of
// statistics from then on, and ends it: everyone asked or on the way is
// stood down (their text says it was a drill) and freed.
func (d *Dispatcher) MarkDrill(ctx context.Context, incidentID, actor string) (incidents.Incident, error) {
	return d.cancelByHand(ctx, incidentID, actor, ReasonDrill, sms.TplDrillMarked)
}

func (d *Dispatcher) cancelByHand(ctx context.Context, incidentID, actor, reason, tpl string) (incidents.Incident, error) {
	var out incidents.Incident
	err := d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		in, err := lockActive(ctx, q, incidentID)
		if err != nil {
			return nil, err
		}
		var staged []events.Message
		if reason == ReasonDrill {
			in.Drill = true // saved by closeLocked
			ev, err := incidents.Announce(ctx, q, in, "marked_drill:"+in.ID, events.IncidentMarkedDrill, in.ID, actor, now, nil)
			if err != nil {
				return nil, err
			}
			staged = append(staged, ev)
		}
		more, err := d.closeLocked(ctx, q, &in, actor, incidents.StatusCancelled, events.IncidentCancelled, tpl,
			map[string]any{"reason": reason}, now)
		if err != nil {
			return nil, err
		}
		d.Log.Info("incident cancelled by hand", "incident", in.ID, "reason", reason, "actor", actor)
		verb := "false_alarm"
		if reason == ReasonDrill {
			verb = "mark_drill"
		}
		if err := auditIncident(ctx, q, in, actor, verb, now, nil); err != nil {
			return nil, err
		}
		out = in
		return append(staged, more...), nil
	})
	return out, err
}

// ResidentSafe applies "I am safe" from the resident's page, as the
// resident's text or the safe button of their link would: the incident is
// cancelled when they are the only one who called, else their safety is
// only noted. It returns the incident and the outcome (OutcomeCancelled
// or OutcomeSafeNoted); an incident already closed is a conflict.
func (d *Dispatcher) ResidentSafe(ctx context.Context, incidentID, community, resident string) (incidents.Incident, string, error) {
	var alarmID string
	err := d.DB.QueryRow(ctx, `SELECT id FROM alarms WHERE incident_id = $1 AND community_id = $2 AND resident = $3
		ORDER BY received_at DESC, id DESC LIMIT 1`, incidentID, community, resident).Scan(&alarmID)
	if errors.Is(err, storage.ErrNoRows) {
		return incidents.Incident{}, "", fmt.Errorf("incident %s: %w", incidentID, errdefs.ErrNotFound)
	}
	if err != nil {
		return incidents.Incident{}, "", fmt.Errorf("alarm of %s on %s: %w", resident, incidentID, err)
	}
	in, outcome, err := d.CancelByReporter(ctx, alarmID, "on the resident page")
	if err == nil && outcome == OutcomeClosed {
		err = fmt.Errorf("incident %s is %s already: %w", in.ID, in.Status, errdefs.ErrConflict)
	}
	return in, outcome, err
}
