package responders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// Outcomes of an answer, as the replier is told and the API reports.
const (
	OutcomeAccepted   = "accepted"
	OutcomeDeclined   = "declined"
	OutcomeArrived    = "arrived"
	OutcomeClosed     = "offer_closed" // nothing to answer any more
	OutcomeNoOffer    = "no_open_offer"
	OutcomeNotKnown   = "unknown_sender"
	OutcomeUnreadable = "not_understood"
	OutcomeCancelled  = "cancelled"
	OutcomeSafeNoted  = "safe_noted"
)

// DutyReplier applies texts from the duty phones of organisations (plan
// duties): "1" acknowledges, "完成" is done. handled is false when the phone
// has no duty the text could be about.
type DutyReplier interface {
	Reply(ctx context.Context, q storage.Querier, in sms.Inbound, reply sms.Reply, now time.Time) (staged []events.Message, outcome string, handled bool, err error)
}

// HandleReply applies a text from a phone: a responder accepting, declining
// or arriving, a resident saying they are safe, or an alarm by text (see
// alarmByText). Every answer is confirmed by text.
func (d *Dispatcher) HandleReply(ctx context.Context, ev events.Event) error {
	var in sms.Inbound
	if err := ev.Decode(&in); err != nil {
		return events.Permanent(err)
	}
	in = in.Storable() // a NUL failed every retry on PostgreSQL (found by FuzzHandleReply)
	return d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		n, err := q.Exec(ctx, `INSERT INTO inbound_sms (sid, from_phone, body, received_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (sid) DO NOTHING`, in.SID, in.From, in.Body, now.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("record reply %s: %w", in.SID, err)
		}
		if n == 0 {
			return nil, nil // handled before
		}
		reply := sms.ParseReply(in.Body)
		// Alarm keywords and texts from numbers that are not residents
		// first; what they leave answers an offer or a duty.
		staged, outcome, handled, err := d.alarmByText(ctx, q, in, reply, now)
		if err == nil && !handled && d.Duties != nil && (reply == sms.ReplyAccept || reply == sms.ReplyDone) {
			staged, outcome, handled, err = d.Duties.Reply(ctx, q, in, reply, now)
		}
		switch {
		case err != nil || handled:
		case reply == sms.ReplySafe:
			staged, outcome, err = d.residentSafeByPhone(ctx, q, in, now)
		default:
			staged, outcome, err = d.responderReply(ctx, q, in, reply, now)
		}
		if err != nil {
			return nil, err
		}
		d.Log.Info("reply handled", "from", sms.Mask(in.From), "sid", in.SID, "reply", reply.String(), "outcome", outcome)
		_, err = q.Exec(ctx, `UPDATE inbound_sms SET outcome = $2 WHERE sid = $1`, in.SID, outcome)
		return staged, err
	})
}

func (d *Dispatcher) responderReply(ctx context.Context, q storage.Querier, in sms.Inbound, reply sms.Reply, now time.Time) ([]events.Message, string, error) {
	var locale string
	err := q.QueryRow(ctx, `SELECT locale FROM responders WHERE phone = $1 ORDER BY updated_at DESC LIMIT 1`, in.From).Scan(&locale)
	if errors.Is(err, storage.ErrNoRows) {
		return nil, OutcomeNotKnown, nil // never text back a number we do not know
	}
	if err != nil {
		return nil, "", fmt.Errorf("responder by phone: %w", err)
	}
	answer := func(tpl string) ([]events.Message, error) {
		return d.notify(ctx, q, now, sms.Text{Key: "reply:" + in.SID, To: in.From, Template: tpl, Locale: locale, Purpose: "reply"})
	}
	if reply == sms.ReplyUnknown {
		m, err := answer(sms.TplUnknownReply)
		return m, OutcomeUnreadable, err
	}
	// Accept and decline answer the latest open offer; "arrived" the
	// latest acceptance not yet on scene.
	where := `o.status IN ('offered', 'expired')`
	if reply == sms.ReplyArrived {
		where = `o.status = 'accepted' AND o.arrived_at = 0`
	}
	var offerID string
	err = q.QueryRow(ctx, `SELECT o.id FROM offers o
		JOIN responders r ON r.id = o.responder_id
		JOIN incidents i ON i.id = o.incident_id
		WHERE r.phone = $1 AND `+where+` AND i.status IN ('open', 'responding', 'escalated')
		ORDER BY o.created_at DESC, o.id DESC LIMIT 1`, in.From).Scan(&offerID)
	if errors.Is(err, storage.ErrNoRows) {
		m, err := answer(sms.TplNoOpenOffer)
		return m, OutcomeNoOffer, err
	}
	if err != nil {
		return nil, "", fmt.Errorf("latest open offer: %w", err)
	}
	o, err := getOffer(ctx, q, offerID)
	if err != nil {
		return nil, "", err
	}
	return d.answer(ctx, q, o, reply, "responder:"+o.Responder+" by sms", now)
}

// AnswerOffer applies an answer given by a one-tap link or on a call. It
// returns the offer as it stands afterwards and the outcome.
func (d *Dispatcher) AnswerOffer(ctx context.Context, offerID string, reply sms.Reply, actor string) (Offer, string, error) {
	var outcome string
	err := d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		o, err := getOffer(ctx, q, offerID)
		if err != nil {
			return nil, err
		}
		staged, out, err := d.answer(ctx, q, o, reply, actor, now)
		outcome = out
		return staged, err
	})
	if err != nil {
		return Offer{}, "", err
	}
	o, err := getOffer(ctx, d.DB, offerID)
	return o, outcome, err
}

// answer locks the offer's incident and applies reply.
func (d *Dispatcher) answer(ctx context.Context, q storage.Querier, o Offer, reply sms.Reply, actor string, now time.Time) ([]events.Message, string, error) {
	in, err := incidents.Lock(ctx, q, o.Incident)
	if err != nil {
		return nil, "", err
	}
	if o, err = getOffer(ctx, q, o.ID); err != nil { // re-read under the lock
		return nil, "", err
	}
	var staged []events.Message
	var outcome string
	switch reply {
	case sms.ReplyAccept:
		staged, outcome, err = d.accept(ctx, q, in, o, actor, now)
	case sms.ReplyDecline:
		staged, outcome, err = d.decline(ctx, q, in, o, actor, now)
	case sms.ReplyArrived:
		staged, outcome, err = d.arrive(ctx, q, in, o, actor, now)
	default:
		return nil, "", fmt.Errorf("answer %s: %w", o.ID, errdefs.Invalid("action", "accept, decline or arrived"))
	}
	if err == nil {
		d.Log.Info("offer answered", "incident", in.ID, "offer", o.ID, "responder", o.Responder, "reply", reply.String(), "outcome", outcome)
	}
	return staged, outcome, err
}

// confirm texts the responder about their offer.
func (d *Dispatcher) confirm(ctx context.Context, q storage.Querier, in incidents.Incident, o Offer, tpl string, now time.Time) ([]events.Message, error) {
	it, _ := d.Tax.Type(in.Type)
	return d.notify(ctx, q, now, sms.Text{Key: tpl + ":" + o.ID, Community: in.Community, Incident: in.ID, Offer: o.ID,
		To: o.Phone, Template: tpl, Params: d.params(in, it, o.Locale, o.DistanceM), Locale: o.Locale, Drill: in.Drill, Purpose: tpl})
}

func (d *Dispatcher) setOffer(ctx context.Context, q storage.Querier, in incidents.Incident, o Offer, status string, now time.Time) error {
	if _, err := q.Exec(ctx, `UPDATE offers SET status = $2, answered_at = $3 WHERE id = $1`, o.ID, status, now.UnixMilli()); err != nil {
		return fmt.Errorf("offer %s to %s: %w", o.ID, status, err)
	}
	noteOffers(q, in, status, 1)
	return nil
}

// accept takes a responder's yes.
func (d *Dispatcher) accept(ctx context.Context, q storage.Querier, in incidents.Incident, o Offer, actor string, now time.Time) ([]events.Message, string, error) {
	if o.Status == OfferAccepted {
		return nil, OutcomeAccepted, nil // the same yes again, by another way
	}
	if !o.Open() || !in.Status.Active() || in.Accepted >= in.Needed {
		if o.Open() {
			if err := d.setOffer(ctx, q, in, o, OfferStoodDown, now); err != nil {
				return nil, "", err
			}
		}
		m, err := d.confirm(ctx, q, in, o, sms.TplOfferClosed, now)
		return m, OutcomeClosed, err
	}
	if err := d.setOffer(ctx, q, in, o, OfferAccepted, now); err != nil {
		return nil, "", err
	}
	if _, err := q.Exec(ctx, `UPDATE responders SET busy_incident = $2 WHERE id = $1`, o.Responder, in.ID); err != nil {
		return nil, "", fmt.Errorf("mark %s busy: %w", o.Responder, err)
	}
	in.Accepted++
	in.Status = incidents.StatusResponding
	staged, err := d.confirm(ctx, q, in, o, sms.TplAcceptConfirm, now)
	if err != nil {
		return nil, "", err
	}
	detail := map[string]any{"offer": o.ID, "responder": o.Responder, "name": o.Name, "distance_m": int(o.DistanceM),
		"wave": o.Wave, "accepted": in.Accepted, "needed": in.Needed}
	if err := incidents.Record(ctx, q, "accepted:"+o.ID, in.ID, now, events.IncidentOfferAccepted, actor, detail); err != nil {
		return nil, "", err
	}
	ev, err := incidents.Event(in, events.IncidentOfferAccepted, o.ID, actor, now, detail)
	if err != nil {
		return nil, "", err
	}
	if err := events.Stage(ctx, q, now, ev); err != nil {
		return nil, "", err
	}
	staged = append(staged, ev)
	told, err := d.tellReporters(ctx, q, in, "coming:"+o.ID, sms.TplResponderComing,
		map[string]string{"name": o.Name}, o.DistanceM, now)
	if err != nil {
		return nil, "", err
	}
	staged = append(staged, told...)
	if in.Accepted >= in.Needed {
		msgs, err := d.standDown(ctx, q, in, sms.TplStandDown, now)
		if err != nil {
			return nil, "", err
		}
		staged = append(staged, msgs...)
	}
	return staged, OutcomeAccepted, incidents.Save(ctx, q, in)
}

func (d *Dispatcher) decline(ctx context.Context, q storage.Querier, in incidents.Incident, o Offer, actor string, now time.Time) ([]events.Message, string, error) {
	if o.Status == OfferDeclined {
		return nil, OutcomeDeclined, nil
	}
	if !o.Open() {
		return nil, OutcomeClosed, nil
	}
	if err := d.setOffer(ctx, q, in, o, OfferDeclined, now); err != nil {
		return nil, "", err
	}
	staged, err := d.confirm(ctx, q, in, o, sms.TplDeclineConfirm, now)
	if err != nil {
		return nil, "", err
	}
	detail := map[string]any{"offer": o.ID, "responder": o.Responder, "name": o.Name, "wave": o.Wave}
	if err := incidents.Record(ctx, q, "declined:"+o.ID, in.ID, now, events.IncidentOfferDeclined, actor, detail); err != nil {
		return nil, "", err
	}
	ev, err := incidents.Event(in, events.IncidentOfferDeclined, o.ID, actor, now, detail)
	if err != nil {
		return nil, "", err
	}
	if err := events.Stage(ctx, q, now, ev); err != nil {
		return nil, "", err
	}
	staged = append(staged, ev)
	more, err := d.moveOnIfWaveDone(ctx, q, in, now)
	return append(staged, more...), OutcomeDeclined, err
}

// arrive records that an accepted responder is on scene and tells the
// people who called.
func (d *Dispatcher) arrive(ctx context.Context, q storage.Querier, in incidents.Incident, o Offer, actor string, now time.Time) ([]events.Message, string, error) {
	if o.Status != OfferAccepted || !in.Status.Active() {
		return nil, OutcomeClosed, nil
	}
	if !o.ArrivedAt.IsZero() {
		return nil, OutcomeArrived, nil
	}
	if _, err := q.Exec(ctx, `UPDATE offers SET arrived_at = $2 WHERE id = $1`, o.ID, now.UnixMilli()); err != nil {
		return nil, "", fmt.Errorf("arrive %s: %w", o.ID, err)
	}
	staged, err := d.confirm(ctx, q, in, o, sms.TplArrivedConfirm, now)
	if err != nil {
		return nil, "", err
	}
	detail := map[string]any{"offer": o.ID, "responder": o.Responder, "name": o.Name}
	if err := incidents.Record(ctx, q, "arrived:"+o.ID, in.ID, now, events.IncidentArrived, actor, detail); err != nil {
		return nil, "", err
	}
	ev, err := incidents.Event(in, events.IncidentArrived, o.ID, actor, now, detail)
	if err != nil {
		return nil, "", err
	}
	if err := events.Stage(ctx, q, now, ev); err != nil {
		return nil, "", err
	}
	told, err := d.tellReporters(ctx, q, in, "arrived:"+o.ID, sms.TplResponderArrived, map[string]string{"name": o.Name}, -1, now)
	if err != nil {
		return nil, "", err
	}
	return append(append(staged, ev), told...), OutcomeArrived, nil
}

// moveOnIfWaveDone starts the next wave at once when nobody in the current
// one can still say yes: waiting for the timer would only lose time.
func (d *Dispatcher) moveOnIfWaveDone(ctx context.Context, q storage.Querier, in incidents.Incident, now time.Time) ([]events.Message, error) {
	if !in.Status.Active() || in.Accepted >= in.Needed {
		return nil, nil
	}
	var pending int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM offers WHERE incident_id = $1 AND wave = $2 AND status = $3`,
		in.ID, in.Wave, OfferOffered).Scan(&pending); err != nil {
		return nil, fmt.Errorf("pending offers of %s: %w", in.ID, err)
	}
	if pending > 0 {
		return nil, nil
	}
	return d.startWave(ctx, q, in, in.Wave+1, now)
}

// standDown tells everyone still asked that they are not needed.
func (d *Dispatcher) standDown(ctx context.Context, q storage.Querier, in incidents.Incident, tpl string, now time.Time) ([]events.Message, error) {
	open, err := queryOffers(ctx, q, `WHERE o.incident_id = $1 AND o.status IN ('offered', 'expired')`, in.ID)
	if err != nil {
		return nil, err
	}
	var staged []events.Message
	for _, o := range open {
		if err := d.setOffer(ctx, q, in, o, OfferStoodDown, now); err != nil {
			return nil, err
		}
		m, err := d.confirm(ctx, q, in, o, tpl, now)
		if err != nil {
			return nil, err
		}
		staged = append(staged, m...)
	}
	if len(open) > 0 {
		if err := incidents.Record(ctx, q, "stood_down:"+in.ID+":"+tpl, in.ID, now, "stood_down", "system",
			map[string]any{"offers": len(open)}); err != nil {
			return nil, err
		}
	}
	return staged, nil
}

// HandleFailed moves an offer on when its text will never arrive: the
// responder cannot answer what they never got.
func (d *Dispatcher) HandleFailed(ctx context.Context, ev events.Event) error {
	var p sms.FailedPayload
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	if p.Purpose != "offer" || p.Offer == "" {
		return nil
	}
	return d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		in, err := incidents.Lock(ctx, q, p.Incident)
		if err != nil {
			return nil, err
		}
		o, err := getOffer(ctx, q, p.Offer)
		if err != nil {
			return nil, err
		}
		if !o.Open() {
			return nil, nil
		}
		if err := d.setOffer(ctx, q, in, o, OfferFailed, now); err != nil {
			return nil, err
		}
		d.Log.Info("offer text failed; offer moves on", "incident", in.ID, "offer", o.ID, "responder", o.Responder)
		ev, err := incidents.Announce(ctx, q, in, "offer_failed:"+o.ID, "offer_failed", o.ID, "system", now,
			map[string]any{"offer": o.ID, "responder": o.Responder, "name": o.Name, "reason": p.Reason})
		if err != nil {
			return nil, err
		}
		if !in.Status.Active() || in.Accepted >= in.Needed || o.Wave != in.Wave {
			return []events.Message{ev}, nil
		}
		more, err := d.replace(ctx, q, in, now)
		return append([]events.Message{ev}, more...), err
	})
}

// replace offers the current wave to one more responder in place of one
// whose text failed.
func (d *Dispatcher) replace(ctx context.Context, q storage.Querier, in incidents.Incident, now time.Time) ([]events.Message, error) {
	it, _ := d.Tax.Type(in.Type)
	picked, err := d.pick(ctx, q, in, it, it.Dispatch.RadiusFor(in.Wave), 1, now)
	if err != nil {
		return nil, err
	}
	if len(picked) == 0 {
		return d.moveOnIfWaveDone(ctx, q, in, now)
	}
	return d.offer(ctx, q, in, it, in.Wave, picked, now)
}

// Resolve closes an incident: everyone still asked or on the way is told,
// and the people who came are free for the next call.
func (d *Dispatcher) Resolve(ctx context.Context, incidentID, actor string) (incidents.Incident, error) {
	return d.close(ctx, incidentID, actor, incidents.StatusResolved, events.IncidentResolved, sms.TplResolved)
}

// close ends an incident with status: open offers are stood down, accepted
// responders told and freed.
func (d *Dispatcher) close(ctx context.Context, incidentID, actor string, status incidents.Status, event, tpl string) (incidents.Incident, error) {
	var out incidents.Incident
	err := d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		in, err := incidents.Lock(ctx, q, incidentID)
		if err != nil {
			return nil, err
		}
		out = in
		if !in.Status.Active() {
			return nil, nil // closing twice is harmless
		}
		staged, err := d.closeLocked(ctx, q, &in, actor, status, event, tpl, nil, now)
		out = in
		if err != nil {
			return nil, err
		}
		return staged, auditIncident(ctx, q, in, actor, "resolve", now, nil)
	})
	return out, err
}

// closeLocked is close inside a transaction that holds the incident's lock;
// detail (a reason, or nil) goes on the timeline and the event.
func (d *Dispatcher) closeLocked(ctx context.Context, q storage.Querier, in *incidents.Incident, actor string,
	status incidents.Status, event, tpl string, detail map[string]any, now time.Time) ([]events.Message, error) {
	staged, err := d.standDown(ctx, q, *in, tpl, now)
	if err != nil {
		return nil, err
	}
	coming, err := queryOffers(ctx, q, `WHERE o.incident_id = $1 AND o.status = $2`, in.ID, OfferAccepted)
	if err != nil {
		return nil, err
	}
	for _, o := range coming {
		m, err := d.confirm(ctx, q, *in, o, tpl, now)
		if err != nil {
			return nil, err
		}
		staged = append(staged, m...)
	}
	if _, err := q.Exec(ctx, `UPDATE responders SET busy_incident = '' WHERE busy_incident = $1`, in.ID); err != nil {
		return nil, fmt.Errorf("free responders of %s: %w", in.ID, err)
	}
	in.Status, in.ClosedAt = status, now
	if err := incidents.Save(ctx, q, *in); err != nil {
		return nil, err
	}
	if err := incidents.Record(ctx, q, event+":"+in.ID, in.ID, now, event, actor, detail); err != nil {
		return nil, err
	}
	ev, err := incidents.Event(*in, event, in.ID, actor, now, detail)
	if err != nil {
		return nil, err
	}
	return append(staged, ev), events.Stage(ctx, q, now, ev)
}

// Offers lists the offers of an incident in the order they were made.
func (d *Dispatcher) Offers(ctx context.Context, incidentID string) ([]Offer, error) {
	return d.OffersIn(ctx, d.DB, incidentID)
}

// OffersIn is Offers inside a caller's transaction.
func (d *Dispatcher) OffersIn(ctx context.Context, q storage.Querier, incidentID string) ([]Offer, error) {
	return queryOffers(ctx, q, `WHERE o.incident_id = $1`, incidentID)
}

// GetOffer reads one offer.
func (d *Dispatcher) GetOffer(ctx context.Context, id string) (Offer, error) {
	return getOffer(ctx, d.DB, id)
}

func getOffer(ctx context.Context, q storage.Querier, id string) (Offer, error) {
	os, err := queryOffers(ctx, q, `WHERE o.id = $1`, id)
	if err != nil {
		return Offer{}, err
	}
	if len(os) == 0 {
		return Offer{}, fmt.Errorf("offer %s: %w", id, errdefs.ErrNotFound)
	}
	return os[0], nil
}

func queryOffers(ctx context.Context, q storage.Querier, where string, args ...any) ([]Offer, error) {
	rows, err := q.Query(ctx, `SELECT o.id, o.incident_id, o.responder_id, r.name, r.phone, r.locale, o.wave, o.status,
		o.distance_m, o.created_at, o.answered_at, o.arrived_at FROM offers o JOIN responders r ON r.id = o.responder_id `+where+`
		ORDER BY o.created_at, o.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("query offers: %w", err)
	}
	defer rows.Close()
	out := []Offer{}
	for rows.Next() {
		var o Offer
		var created, answered, arrived int64
		if err := rows.Scan(&o.ID, &o.Incident, &o.Responder, &o.Name, &o.Phone, &o.Locale, &o.Wave, &o.Status,
			&o.DistanceM, &created, &answered, &arrived); err != nil {
			return nil, err
		}
		o.CreatedAt = time.UnixMilli(created).UTC()
		if answered > 0 {
			o.AnsweredAt = time.UnixMilli(answered).UTC()
		}
		if arrived > 0 {
			o.ArrivedAt = time.UnixMilli(arrived).UTC()
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
