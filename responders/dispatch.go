package responders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// Offer states.
const (
	OfferOffered   = "offered"
	OfferAccepted  = "accepted"
	OfferDeclined  = "declined"
	OfferExpired   = "expired" // its wave ran out of time; a late yes still counts
	OfferStoodDown = "stood_down"
	OfferFailed    = "failed" // the text could not be delivered
)

// Offer is a request to one responder to come to one incident.
type Offer struct {
	ID         string    `json:"id"`
	Incident   string    `json:"incident"`
	Responder  string    `json:"responder"`
	Name       string    `json:"name"`
	Phone      string    `json:"-"`
	Locale     string    `json:"-"`
	Wave       int       `json:"wave"`
	Status     string    `json:"status"`
	DistanceM  float64   `json:"distance_m"`
	CreatedAt  time.Time `json:"created_at"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
}

// Dispatcher finds responders for incidents and follows their answers.
// Every method is a handler on a durable consumer or an API action; each
// runs in one transaction that locks the incident, so replicas never step on
// each other, and each is idempotent.
type Dispatcher struct {
	DB    storage.DB
	Tax   *events.Taxonomy
	Relay *events.Relay
	Log   *slog.Logger
	Now   func() time.Time
	// WaveTimeout is how long a wave waits for an acceptance.
	WaveTimeout time.Duration
}

// tx runs fn in a transaction and publishes what it staged after commit.
func (d *Dispatcher) tx(ctx context.Context, fn func(q storage.Querier, now time.Time) ([]events.Message, error)) error {
	var staged []events.Message
	err := d.DB.InTx(ctx, func(q storage.Querier) error {
		var err error
		staged, err = fn(q, d.Now())
		return err
	})
	if err != nil {
		return err
	}
	d.Relay.Send(ctx, staged)
	return nil
}

// HandleIncident starts dispatch when an incident opens.
func (d *Dispatcher) HandleIncident(ctx context.Context, ev events.Event) error {
	if ev.Type != "incident."+events.IncidentOpened {
		return nil
	}
	var p incidents.Payload
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	return d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		in, err := incidents.Lock(ctx, q, p.ID)
		if err != nil {
			return nil, err
		}
		if !in.Status.Active() || in.Wave > 0 {
			return nil, nil // dispatched already: this is a redelivery
		}
		return d.startWave(ctx, q, in, 1, now)
	})
}

// wavePayload is what a wave timer carries.
type wavePayload struct {
	Incident string `json:"incident"`
	Wave     int    `json:"wave"`
}

// HandleTimer moves on when a wave's time is up and nobody has accepted.
func (d *Dispatcher) HandleTimer(ctx context.Context, ev events.Event) error {
	var p wavePayload
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	return d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		in, err := incidents.Lock(ctx, q, p.Incident)
		if err != nil {
			return nil, err
		}
		if !in.Status.Active() || in.Wave != p.Wave || in.Accepted >= in.Needed {
			return nil, nil // answered, moved on or closed since the timer was set
		}
		n, err := q.Exec(ctx, `UPDATE offers SET status = $3 WHERE incident_id = $1 AND wave = $2 AND status = $4`,
			in.ID, p.Wave, OfferExpired, OfferOffered)
		if err != nil {
			return nil, fmt.Errorf("expire wave %d of %s: %w", p.Wave, in.ID, err)
		}
		if err := incidents.Record(ctx, q, fmt.Sprintf("wave_timeout:%s:%d", in.ID, p.Wave), in.ID, now,
			"wave_timeout", "system", map[string]any{"wave": p.Wave, "unanswered": n}); err != nil {
			return nil, err
		}
		return d.startWave(ctx, q, in, p.Wave+1, now)
	})
}

// startWave offers the incident to the next nearest qualified responders,
// widening the radius each wave; a wave that finds nobody moves straight to
// the next. After the last wave the emergency center is texted.
func (d *Dispatcher) startWave(ctx context.Context, q storage.Querier, in incidents.Incident, n int, now time.Time) ([]events.Message, error) {
	it, ok := d.Tax.Type(in.Type)
	if !ok {
		return nil, events.Permanent(fmt.Errorf("incident %s: unknown type %s", in.ID, in.Type))
	}
	var staged []events.Message
	for ; n <= it.Dispatch.Waves; n++ {
		radius := it.Dispatch.RadiusFor(n)
		due := now.Add(d.WaveTimeout)
		created, err := q.Exec(ctx, `INSERT INTO waves (incident_id, wave, radius_m, started_at, due_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (incident_id, wave) DO NOTHING`, in.ID, n, radius, now.UnixMilli(), due.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("start wave %d of %s: %w", n, in.ID, err)
		}
		if created == 0 {
			return staged, nil // another delivery started this wave
		}
		in.Wave = n
		asked, err := offeredResponders(ctx, q, in.ID)
		if err != nil {
			return nil, err
		}
		near, err := respondersNear(ctx, q, in.Community, in.Location, radius)
		if err != nil {
			return nil, err
		}
		picked := Rank(d.Tax, near, it.Skills, in.Location, radius, now, asked, it.Dispatch.WaveSize)
		if len(picked) == 0 {
			if err := incidents.Record(ctx, q, fmt.Sprintf("wave_empty:%s:%d", in.ID, n), in.ID, now, "wave_empty", "system",
				map[string]any{"wave": n, "radius_m": radius}); err != nil {
				return nil, err
			}
			continue
		}
		msgs, err := d.offer(ctx, q, in, it, n, picked, now)
		if err != nil {
			return nil, err
		}
		staged = append(staged, msgs...)
		timer, err := events.New(fmt.Sprintf("wave:%s:%d", in.ID, n), "timer.wave", events.TimerSubjectWave, in.Community, now,
			wavePayload{Incident: in.ID, Wave: n})
		if err != nil {
			return nil, err
		}
		tm, err := events.EventMessage(timer, due)
		if err != nil {
			return nil, err
		}
		if err := events.Stage(ctx, q, now, tm); err != nil {
			return nil, err
		}
		staged = append(staged, tm)
		return staged, incidents.Save(ctx, q, in)
	}
	msgs, err := d.escalate(ctx, q, &in, now)
	if err != nil {
		return nil, err
	}
	return append(staged, msgs...), incidents.Save(ctx, q, in)
}

// offer creates offers and their texts for one wave.
func (d *Dispatcher) offer(ctx context.Context, q storage.Querier, in incidents.Incident, it events.IncidentType,
	wave int, picked []Candidate, now time.Time) ([]events.Message, error) {
	var staged []events.Message
	var who []map[string]any
	for _, c := range picked {
		r := c.Responder
		id := events.NewID("of", now)
		if _, err := q.Exec(ctx, `INSERT INTO offers (id, incident_id, responder_id, wave, status, distance_m, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (incident_id, responder_id) DO NOTHING`,
			id, in.ID, r.ID, wave, OfferOffered, c.DistanceM, now.UnixMilli()); err != nil {
			return nil, fmt.Errorf("offer %s to %s: %w", in.ID, r.ID, err)
		}
		body := sms.Render(sms.TplOffer, r.Locale, d.params(in, it, r.Locale, c.DistanceM), in.Drill)
		m, err := d.text(ctx, q, now, sms.Text{Key: "offer:" + in.ID + ":" + r.ID, Community: in.Community, Incident: in.ID,
			Offer: id, To: r.Phone, Body: body, Purpose: "offer"})
		if err != nil {
			return nil, err
		}
		staged = append(staged, m...)
		who = append(who, map[string]any{"responder": r.ID, "name": r.Name, "distance_m": int(c.DistanceM)})
	}
	detail := map[string]any{"wave": wave, "radius_m": it.Dispatch.RadiusFor(wave), "offers": who}
	if err := incidents.Record(ctx, q, fmt.Sprintf("dispatched:%s:%d:%s", in.ID, wave, picked[0].Responder.ID), in.ID, now,
		events.IncidentDispatched, "system", detail); err != nil {
		return nil, err
	}
	ev, err := incidents.Event(in, events.IncidentDispatched, fmt.Sprintf("%s:%d:%s", in.ID, wave, picked[0].Responder.ID), "system", now, detail)
	if err != nil {
		return nil, err
	}
	if err := events.Stage(ctx, q, now, ev); err != nil {
		return nil, err
	}
	return append(staged, ev), nil
}

// text queues a text; it returns the message to relay, if one was queued.
func (d *Dispatcher) text(ctx context.Context, q storage.Querier, now time.Time, t sms.Text) ([]events.Message, error) {
	m, queued, err := sms.Enqueue(ctx, q, now, t)
	if err != nil || !queued {
		return nil, err
	}
	d.Log.Info("text queued", "purpose", t.Purpose, "to", sms.Mask(t.To), "incident", t.Incident)
	return []events.Message{m}, nil
}

// params are the template parameters that describe an incident to a person.
func (d *Dispatcher) params(in incidents.Incident, it events.IncidentType, locale string, distanceM float64) map[string]string {
	p := map[string]string{"type": it.Label.In(locale), "address": in.Address, "ref": Ref(in.ID)}
	if p["address"] == "" {
		p["address"] = fmt.Sprintf("%.5f,%.5f", in.Location.Lat, in.Location.Lng)
	}
	if distanceM >= 0 {
		p["distance"] = formatDistance(distanceM, locale)
	}
	return p
}

// Ref is the short reference people read in a text: the end of the id.
func Ref(id string) string {
	if len(id) < 4 {
		return strings.ToUpper(id)
	}
	return strings.ToUpper(id[len(id)-4:])
}

func formatDistance(m float64, locale string) string {
	en := strings.HasPrefix(locale, "en")
	switch {
	case m >= 1000 && en:
		return fmt.Sprintf("%.1f km", m/1000)
	case m >= 1000:
		return fmt.Sprintf("%.1f公里", m/1000)
	case en:
		return fmt.Sprintf("%.0f m", m)
	default:
		return fmt.Sprintf("%.0f米", m)
	}
}

// escalate texts the community's emergency center: nobody (or not enough
// people) accepted after every wave. The caller saves in.
func (d *Dispatcher) escalate(ctx context.Context, q storage.Querier, in *incidents.Incident, now time.Time) ([]events.Message, error) {
	it, _ := d.Tax.Type(in.Type)
	if in.Accepted == 0 {
		in.Status = incidents.StatusEscalated
	}
	var offered int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM offers WHERE incident_id = $1`, in.ID).Scan(&offered); err != nil {
		return nil, fmt.Errorf("count offers of %s: %w", in.ID, err)
	}
	centers, err := listOrgs(ctx, q, in.Community, OrgEmergencyCenter)
	if err != nil {
		return nil, err
	}
	var staged []events.Message
	var texted []string
	for _, c := range centers {
		if c.DutyPhone == "" {
			continue
		}
		params := d.params(*in, it, "zh-CN", -1)
		params["offered"] = fmt.Sprint(offered)
		m, err := d.text(ctx, q, now, sms.Text{Key: "escalate:" + in.ID + ":" + c.ID, Community: in.Community, Incident: in.ID,
			To: c.DutyPhone, Body: sms.Render(sms.TplEscalate, "zh-CN", params, in.Drill), Purpose: "escalate"})
		if err != nil {
			return nil, err
		}
		staged = append(staged, m...)
		texted = append(texted, c.ID)
	}
	if len(texted) == 0 {
		d.Log.Error("incident escalated but the community has no emergency center with a duty phone", "incident", in.ID, "community", in.Community)
	}
	detail := map[string]any{"waves": in.Wave, "offered": offered, "accepted": in.Accepted, "needed": in.Needed, "texted": texted}
	if err := incidents.Record(ctx, q, "escalated:"+in.ID, in.ID, now, events.IncidentEscalated, "system", detail); err != nil {
		return nil, err
	}
	ev, err := incidents.Event(*in, events.IncidentEscalated, in.ID, "system", now, detail)
	if err != nil {
		return nil, err
	}
	return append(staged, ev), events.Stage(ctx, q, now, ev)
}

// HandleReply applies a responder's text: accept or decline their latest
// open offer, and confirm by text.
func (d *Dispatcher) HandleReply(ctx context.Context, ev events.Event) error {
	var in sms.Inbound
	if err := ev.Decode(&in); err != nil {
		return events.Permanent(err)
	}
	log := d.Log.With("from", sms.Mask(in.From), "sid", in.SID)
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
		staged, outcome, err := d.applyReply(ctx, q, in, reply, now)
		if err != nil {
			return nil, err
		}
		log.Info("reply handled", "reply", reply.String(), "outcome", outcome)
		_, err = q.Exec(ctx, `UPDATE inbound_sms SET outcome = $2 WHERE sid = $1`, in.SID, outcome)
		return staged, err
	})
}

func (d *Dispatcher) applyReply(ctx context.Context, q storage.Querier, in sms.Inbound, reply sms.Reply, now time.Time) ([]events.Message, string, error) {
	var locale string
	err := q.QueryRow(ctx, `SELECT locale FROM responders WHERE phone = $1 ORDER BY updated_at DESC LIMIT 1`, in.From).Scan(&locale)
	if errors.Is(err, storage.ErrNoRows) {
		return nil, "unknown_sender", nil // never text back a number we do not know
	}
	if err != nil {
		return nil, "", fmt.Errorf("responder by phone: %w", err)
	}
	answer := func(tpl string, params map[string]string, drill bool, community string) ([]events.Message, error) {
		return d.text(ctx, q, now, sms.Text{Key: "reply:" + in.SID, Community: community, To: in.From,
			Body: sms.Render(tpl, locale, params, drill), Purpose: "reply"})
	}
	if reply == sms.ReplyUnknown {
		m, err := answer(sms.TplUnknownReply, nil, false, "")
		return m, "not_understood", err
	}
	var offerID, incidentID string
	err = q.QueryRow(ctx, `SELECT o.id, o.incident_id FROM offers o
		JOIN responders r ON r.id = o.responder_id
		JOIN incidents i ON i.id = o.incident_id
		WHERE r.phone = $1 AND o.status IN ('offered', 'expired') AND i.status IN ('open', 'responding', 'escalated')
		ORDER BY o.created_at DESC, o.id DESC LIMIT 1`, in.From).Scan(&offerID, &incidentID)
	if errors.Is(err, storage.ErrNoRows) {
		m, err := answer(sms.TplNoOpenOffer, nil, false, "")
		return m, "no_open_offer", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("latest open offer: %w", err)
	}
	inc, err := incidents.Lock(ctx, q, incidentID)
	if err != nil {
		return nil, "", err
	}
	o, err := getOffer(ctx, q, offerID)
	if err != nil {
		return nil, "", err
	}
	actor := "responder:" + o.Responder
	if reply == sms.ReplyAccept {
		return d.accept(ctx, q, inc, o, actor, now)
	}
	return d.decline(ctx, q, inc, o, actor, now)
}

// Accept takes a responder's yes for an offer (by reply or on their behalf).
func (d *Dispatcher) accept(ctx context.Context, q storage.Querier, in incidents.Incident, o Offer, actor string, now time.Time) ([]events.Message, string, error) {
	it, _ := d.Tax.Type(in.Type)
	params := d.params(in, it, o.Locale, o.DistanceM)
	confirm := func(tpl string) ([]events.Message, error) {
		return d.text(ctx, q, now, sms.Text{Key: tpl + ":" + o.ID, Community: in.Community, Incident: in.ID, Offer: o.ID,
			To: o.Phone, Body: sms.Render(tpl, o.Locale, params, in.Drill), Purpose: tpl})
	}
	if o.Status != OfferOffered && o.Status != OfferExpired || !in.Status.Active() || in.Accepted >= in.Needed {
		if o.Status == OfferOffered || o.Status == OfferExpired {
			if _, err := q.Exec(ctx, `UPDATE offers SET status = $2, answered_at = $3 WHERE id = $1`, o.ID, OfferStoodDown, now.UnixMilli()); err != nil {
				return nil, "", err
			}
		}
		m, err := confirm(sms.TplOfferClosed)
		return m, "offer_closed", err
	}
	if _, err := q.Exec(ctx, `UPDATE offers SET status = $2, answered_at = $3 WHERE id = $1`, o.ID, OfferAccepted, now.UnixMilli()); err != nil {
		return nil, "", fmt.Errorf("accept %s: %w", o.ID, err)
	}
	if _, err := q.Exec(ctx, `UPDATE responders SET busy_incident = $2 WHERE id = $1`, o.Responder, in.ID); err != nil {
		return nil, "", fmt.Errorf("mark %s busy: %w", o.Responder, err)
	}
	in.Accepted++
	in.Status = incidents.StatusResponding
	staged, err := confirm(sms.TplAcceptConfirm)
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
	if in.Accepted >= in.Needed {
		msgs, err := d.standDown(ctx, q, in, sms.TplStandDown, now)
		if err != nil {
			return nil, "", err
		}
		staged = append(staged, msgs...)
	}
	return staged, "accepted", incidents.Save(ctx, q, in)
}

func (d *Dispatcher) decline(ctx context.Context, q storage.Querier, in incidents.Incident, o Offer, actor string, now time.Time) ([]events.Message, string, error) {
	if o.Status != OfferOffered && o.Status != OfferExpired {
		return nil, "offer_closed", nil
	}
	if _, err := q.Exec(ctx, `UPDATE offers SET status = $2, answered_at = $3 WHERE id = $1`, o.ID, OfferDeclined, now.UnixMilli()); err != nil {
		return nil, "", fmt.Errorf("decline %s: %w", o.ID, err)
	}
	it, _ := d.Tax.Type(in.Type)
	staged, err := d.text(ctx, q, now, sms.Text{Key: "decline_confirm:" + o.ID, Community: in.Community, Incident: in.ID, Offer: o.ID,
		To: o.Phone, Body: sms.Render(sms.TplDeclineConfirm, o.Locale, d.params(in, it, o.Locale, o.DistanceM), in.Drill), Purpose: "decline_confirm"})
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
	return append(staged, more...), "declined", err
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
	it, _ := d.Tax.Type(in.Type)
	var staged []events.Message
	for _, o := range open {
		if _, err := q.Exec(ctx, `UPDATE offers SET status = $2, answered_at = $3 WHERE id = $1`, o.ID, OfferStoodDown, now.UnixMilli()); err != nil {
			return nil, fmt.Errorf("stand down %s: %w", o.ID, err)
		}
		m, err := d.text(ctx, q, now, sms.Text{Key: "stand_down:" + o.ID, Community: in.Community, Incident: in.ID, Offer: o.ID,
			To: o.Phone, Body: sms.Render(tpl, o.Locale, d.params(in, it, o.Locale, o.DistanceM), in.Drill), Purpose: "stand_down"})
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
		if o.Status != OfferOffered && o.Status != OfferExpired {
			return nil, nil
		}
		if _, err := q.Exec(ctx, `UPDATE offers SET status = $2, answered_at = $3 WHERE id = $1`, o.ID, OfferFailed, now.UnixMilli()); err != nil {
			return nil, err
		}
		if err := incidents.Record(ctx, q, "offer_failed:"+o.ID, in.ID, now, "offer_failed", "system",
			map[string]any{"offer": o.ID, "responder": o.Responder, "name": o.Name, "reason": p.Reason}); err != nil {
			return nil, err
		}
		if !in.Status.Active() || in.Accepted >= in.Needed || o.Wave != in.Wave {
			return nil, nil
		}
		return d.replace(ctx, q, in, now)
	})
}

// replace offers the current wave to one more responder in place of one
// whose text failed.
func (d *Dispatcher) replace(ctx context.Context, q storage.Querier, in incidents.Incident, now time.Time) ([]events.Message, error) {
	it, _ := d.Tax.Type(in.Type)
	radius := it.Dispatch.RadiusFor(in.Wave)
	asked, err := offeredResponders(ctx, q, in.ID)
	if err != nil {
		return nil, err
	}
	near, err := respondersNear(ctx, q, in.Community, in.Location, radius)
	if err != nil {
		return nil, err
	}
	picked := Rank(d.Tax, near, it.Skills, in.Location, radius, now, asked, 1)
	if len(picked) == 0 {
		return d.moveOnIfWaveDone(ctx, q, in, now)
	}
	return d.offer(ctx, q, in, it, in.Wave, picked, now)
}

// Resolve closes an incident: everyone still asked or on the way is told,
// and the people who came are free for the next call.
func (d *Dispatcher) Resolve(ctx context.Context, incidentID, actor string) (incidents.Incident, error) {
	var out incidents.Incident
	err := d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		in, err := incidents.Lock(ctx, q, incidentID)
		if err != nil {
			return nil, err
		}
		out = in
		if in.Status == incidents.StatusResolved {
			return nil, nil // resolving twice is harmless
		}
		staged, err := d.standDown(ctx, q, in, sms.TplResolved, now)
		if err != nil {
			return nil, err
		}
		coming, err := queryOffers(ctx, q, `WHERE o.incident_id = $1 AND o.status = $2`, in.ID, OfferAccepted)
		if err != nil {
			return nil, err
		}
		it, _ := d.Tax.Type(in.Type)
		for _, o := range coming {
			m, err := d.text(ctx, q, now, sms.Text{Key: "resolved:" + o.ID, Community: in.Community, Incident: in.ID, Offer: o.ID,
				To: o.Phone, Body: sms.Render(sms.TplResolved, o.Locale, d.params(in, it, o.Locale, o.DistanceM), in.Drill), Purpose: "resolved"})
			if err != nil {
				return nil, err
			}
			staged = append(staged, m...)
		}
		if _, err := q.Exec(ctx, `UPDATE responders SET busy_incident = '' WHERE busy_incident = $1`, in.ID); err != nil {
			return nil, fmt.Errorf("free responders of %s: %w", in.ID, err)
		}
		in.Status, in.ClosedAt = incidents.StatusResolved, now
		if err := incidents.Save(ctx, q, in); err != nil {
			return nil, err
		}
		if err := incidents.Record(ctx, q, "resolved:"+in.ID, in.ID, now, events.IncidentResolved, actor, nil); err != nil {
			return nil, err
		}
		ev, err := incidents.Event(in, events.IncidentResolved, in.ID, actor, now, nil)
		if err != nil {
			return nil, err
		}
		out = in
		return append(staged, ev), events.Stage(ctx, q, now, ev)
	})
	return out, err
}

// Offers lists the offers of an incident in the order they were made.
func (d *Dispatcher) Offers(ctx context.Context, incidentID string) ([]Offer, error) {
	return queryOffers(ctx, d.DB, `WHERE o.incident_id = $1`, incidentID)
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
		o.distance_m, o.created_at, o.answered_at FROM offers o JOIN responders r ON r.id = o.responder_id `+where+`
		ORDER BY o.created_at, o.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("query offers: %w", err)
	}
	defer rows.Close()
	out := []Offer{}
	for rows.Next() {
		var o Offer
		var created, answered int64
		if err := rows.Scan(&o.ID, &o.Incident, &o.Responder, &o.Name, &o.Phone, &o.Locale, &o.Wave, &o.Status,
			&o.DistanceM, &created, &answered); err != nil {
			return nil, err
		}
		o.CreatedAt = time.UnixMilli(created).UTC()
		if answered > 0 {
			o.AnsweredAt = time.UnixMilli(answered).UTC()
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

func offeredResponders(ctx context.Context, q storage.Querier, incident string) (map[string]bool, error) {
	rows, err := q.Query(ctx, `SELECT responder_id FROM offers WHERE incident_id = $1`, incident)
	if err != nil {
		return nil, fmt.Errorf("offered responders of %s: %w", incident, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// respondersNear reads the available, idle responders of a community inside
// the bounding box of a radius; the (community, lat, lng) index narrows the
// scan and Rank re-ranks by exact distance. Availability and busyness are
// read from the database at the moment of matching, never from a cache, so
// two replicas never offer a busy person.
func respondersNear(ctx context.Context, q storage.Querier, community string, at geo.Point, radiusM float64) ([]Responder, error) {
	box := geo.BoxAround(at, radiusM)
	return queryResponders(ctx, q, `SELECT `+responderColumns+` FROM responders
		WHERE community_id = $1 AND lat BETWEEN $2 AND $3 AND lng BETWEEN $4 AND $5 AND available = true AND busy_incident = ''`,
		community, box.MinLat, box.MaxLat, box.MinLng, box.MaxLng)
}
