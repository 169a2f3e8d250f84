package responders

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/links"
	"github.com/shouwang/shouwang/metrics"
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
	ArrivedAt  time.Time `json:"arrived_at,omitzero"`
}

// Open reports whether the responder can still answer the offer.
func (o Offer) Open() bool { return o.Status == OfferOffered || o.Status == OfferExpired }

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
	// VoiceAfter is how long an offer may go unanswered before the
	// responder is called; zero turns calls off.
	VoiceAfter time.Duration
	// LinkBase is the public base URL one-tap links start with.
	LinkBase string
	// LinkTTL is how long a one-tap link works.
	LinkTTL time.Duration
	// Duties takes texts that answer plan duties rather than offers.
	Duties DutyReplier
	// Metrics counts offers by outcome; nil counts nothing.
	Metrics *metrics.Set
	// Index proposes candidates without SQL; nil matches by SQL only.
	Index *Index
}

// tx runs fn in a transaction and publishes what it staged after commit.
// The offer changes fn noted are counted once it has committed and before
// anything is published, so the count never trails the texts it causes.
func (d *Dispatcher) tx(ctx context.Context, fn func(q storage.Querier, now time.Time) ([]events.Message, error)) error {
	t := &offerTx{}
	var staged []events.Message
	err := d.DB.InTx(ctx, func(q storage.Querier) error {
		t.Querier, t.changes = q, nil
		var err error
		staged, err = fn(t, d.Now())
		return err
	})
	if err != nil {
		return err
	}
	for outcome, n := range t.changes {
		d.Metrics.Offers(outcome, n)
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
		noteOffers(q, in, OfferExpired, n)
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
	return d.waves(ctx, q, in, it, n, it.Dispatch.Waves, now)
}

// waves tries waves n to last in turn until one finds someone to ask;
// when none does, the emergency center is texted. A dispatcher's
// redispatch may go past the type's last wave (see Redispatch).
func (d *Dispatcher) waves(ctx context.Context, q storage.Querier, in incidents.Incident, it events.IncidentType,
	n, last int, now time.Time) ([]events.Message, error) {
	var staged []events.Message
	for ; n <= last; n++ {
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
		picked, err := d.pick(ctx, q, in, it, radius, it.Dispatch.WaveSize, now)
		if err != nil {
			return nil, err
		}
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
		d.Log.Info("wave offered", "incident", in.ID, "wave", n, "radius_m", radius, "offers", len(picked))
		staged = append(staged, msgs...)
		tm, err := timer(fmt.Sprintf("wave:%s:%d", in.ID, n), events.TimerSubjectWave, "timer.wave", in.Community, now, due,
			wavePayload{Incident: in.ID, Wave: n})
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

// timer builds a message delivered no earlier than due.
func timer(id, subject, typ, community string, now, due time.Time, payload any) (events.Message, error) {
	ev, err := events.New(id, typ, subject, community, now, payload)
	if err != nil {
		return events.Message{}, err
	}
	return events.EventMessage(ev, due)
}

// pick ranks the responders not yet asked within radius of the incident.
func (d *Dispatcher) pick(ctx context.Context, q storage.Querier, in incidents.Incident, it events.IncidentType,
	radius float64, limit int, now time.Time) ([]Candidate, error) {
	asked, err := offeredResponders(ctx, q, in.ID)
	if err != nil {
		return nil, err
	}
	var scope *Scope
	if in.Drill {
		if scope, err = ScopeOf(ctx, q, in.ID); err != nil {
			return nil, err
		}
	}
	iq := Query{Community: in.Community, At: in.Location, RadiusM: radius, Skills: it.Skills, Now: now, Exclude: asked,
		Scope: scope, Limit: limit}
	if picked, ok, err := d.Index.pick(ctx, q, d.Tax, iq); err != nil || ok {
		return picked, err
	}
	near, err := respondersNear(ctx, q, in.Community, in.Location, radius)
	if err != nil {
		return nil, err
	}
	near = scope.Filter(near)
	return Rank(d.Tax, near, it.Skills, in.Location, radius, now, asked, limit), nil
}

// offer creates offers, their one-tap links, texts and call timers for one
// wave.
func (d *Dispatcher) offer(ctx context.Context, q storage.Querier, in incidents.Incident, it events.IncidentType,
	wave int, picked []Candidate, now time.Time) ([]events.Message, error) {
	var staged []events.Message
	var who []map[string]any
	var texts []sms.Text
	for _, c := range picked {
		r := c.Responder
		id := events.NewID("of", now)
		n, err := q.Exec(ctx, `INSERT INTO offers (id, incident_id, responder_id, wave, status, distance_m, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (incident_id, responder_id) DO NOTHING`,
			id, in.ID, r.ID, wave, OfferOffered, c.DistanceM, now.UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("offer %s to %s: %w", in.ID, r.ID, err)
		}
		noteOffers(q, in, OfferOffered, n)
		token, err := links.Issue(ctx, q, links.KindOffer, id, in.Community, r.Locale, now, now.Add(d.linkTTL()))
		if err != nil {
			return nil, err
		}
		params := d.params(in, it, r.Locale, c.DistanceM)
		params["link"] = d.link(token)
		texts = append(texts, sms.Text{Key: "offer:" + in.ID + ":" + r.ID, Community: in.Community, Incident: in.ID,
			Offer: id, To: r.Phone, Template: sms.TplOffer, Params: params, Locale: r.Locale, Drill: in.Drill, Purpose: "offer"})
		if d.VoiceAfter > 0 {
			tm, err := timer("voice:"+id, events.TimerSubjectVoice, "timer.voice", in.Community, now, now.Add(d.VoiceAfter),
				voicePayload{Offer: id})
			if err != nil {
				return nil, err
			}
			if err := events.Stage(ctx, q, now, tm); err != nil {
				return nil, err
			}
			staged = append(staged, tm)
		}
		who = append(who, map[string]any{"responder": r.ID, "name": r.Name, "distance_m": int(c.DistanceM)})
	}
	// The wave's offers share one message to the sender.
	m, err := d.notify(ctx, q, now, texts...)
	if err != nil {
		return nil, err
	}
	staged = append(staged, m...)
	detail := map[string]any{"wave": wave, "radius_m": it.Dispatch.RadiusFor(wave), "offers": who}
	key := fmt.Sprintf("%s:%d:%s", in.ID, wave, picked[0].Responder.ID)
	if err := incidents.Record(ctx, q, "dispatched:"+key, in.ID, now, events.IncidentDispatched, "system", detail); err != nil {
		return nil, err
	}
	ev, err := incidents.Event(in, events.IncidentDispatched, key, "system", now, detail)
	if err != nil {
		return nil, err
	}
	if err := events.Stage(ctx, q, now, ev); err != nil {
		return nil, err
	}
	return append(staged, ev), nil
}

func (d *Dispatcher) linkTTL() time.Duration {
	if d.LinkTTL <= 0 {
		return 12 * time.Hour
	}
	return d.LinkTTL
}

func (d *Dispatcher) link(token string) string {
	return strings.TrimRight(d.LinkBase, "/") + "/o/" + token
}

// voicePayload is what a call timer carries.
type voicePayload struct {
	Offer string `json:"offer"`
}

// HandleVoiceTimer calls a responder whose offer is still unanswered: a
// text can go unseen, a ringing phone rarely does.
func (d *Dispatcher) HandleVoiceTimer(ctx context.Context, ev events.Event) error {
	var p voicePayload
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	return d.tx(ctx, func(q storage.Querier, now time.Time) ([]events.Message, error) {
		o, err := getOffer(ctx, q, p.Offer)
		if err != nil {
			return nil, err
		}
		in, err := incidents.Lock(ctx, q, o.Incident)
		if err != nil {
			return nil, err
		}
		if !o.Open() || !in.Status.Active() || in.Accepted >= in.Needed {
			return nil, nil
		}
		it, _ := d.Tax.Type(in.Type)
		m, err := d.notify(ctx, q, now, sms.Text{Key: "call:" + o.ID, Community: in.Community, Incident: in.ID, Offer: o.ID,
			To: o.Phone, Template: sms.TplVoiceOffer, Params: d.params(in, it, o.Locale, o.DistanceM), Locale: o.Locale,
			Drill: in.Drill, Purpose: "offer_call", Channel: sms.ChannelVoice})
		if err != nil || len(m) == 0 {
			return m, err
		}
		noteOffers(q, in, outcomeCalled, 1)
		ev, err := incidents.Announce(ctx, q, in, "called:"+o.ID, "offer_called", o.ID, "system", now,
			map[string]any{"offer": o.ID, "responder": o.Responder, "name": o.Name})
		return append(m, ev), err
	})
}

// notify queues texts, one message waking the sender for them all; it
// returns the messages to relay, none if the texts were queued before.
// (Texts queued together are committed together, so a redelivery finds
// all of them queued or none.)
func (d *Dispatcher) notify(ctx context.Context, q storage.Querier, now time.Time, texts ...sms.Text) ([]events.Message, error) {
	m, err := sms.QueueAll(ctx, q, now, texts...)
	if err != nil || len(m) == 0 {
		return nil, err
	}
	for _, t := range texts {
		channel := t.Channel
		if channel == "" {
			channel = sms.ChannelSMS
		}
		d.Log.Info("text queued", "template", t.Template, "channel", channel, "to", sms.Mask(t.To), "incident", t.Incident)
	}
	return m, nil
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
		m, err := d.notify(ctx, q, now, sms.Text{Key: "escalate:" + in.ID + ":" + c.ID, Community: in.Community, Incident: in.ID,
			To: c.DutyPhone, Template: sms.TplEscalate, Params: params, Drill: in.Drill, Purpose: "escalate"})
		if err != nil {
			return nil, err
		}
		staged = append(staged, m...)
		texted = append(texted, c.ID)
	}
	if len(texted) == 0 {
		d.Log.Error("incident escalated but the community has no emergency center with a duty phone", "incident", in.ID, "community", in.Community)
	} else {
		d.Log.Warn("incident escalated to the emergency center", "incident", in.ID, "waves", in.Wave, "offered", offered, "accepted", in.Accepted)
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

func offeredResponders(ctx context.Context, q storage.Querier, incident string) (map[string]bool, error) {
	asked, err := storage.StringSet(ctx, q, `SELECT responder_id FROM offers WHERE incident_id = $1`, incident)
	if err != nil {
		return nil, fmt.Errorf("offered responders of %s: %w", incident, err)
	}
	return asked, nil
}

// Nearest finds up to limit responders qualified for skill, available and
// idle, within radiusM of at, nearest first; plans use it to give a duty to
// a skill group.
func Nearest(ctx context.Context, x *Index, q storage.Querier, tax *events.Taxonomy, community string, at geo.Point,
	radiusM float64, skill string, now time.Time, limit int, scope *Scope) ([]Candidate, error) {
	// The index proposes and the database confirms, as for offers; a plan
	// asking for one volunteer per vulnerable resident would otherwise read
	// every responder within 3 km once per resident.
	iq := Query{Community: community, At: at, RadiusM: radiusM, Skills: []string{skill}, Now: now, Scope: scope, Limit: limit}
	if picked, ok, err := x.pick(ctx, q, tax, iq); err != nil || ok {
		return picked, err
	}
	near, err := respondersNear(ctx, q, community, at, radiusM)
	if err != nil {
		return nil, err
	}
	near = scope.Filter(near)
	return Rank(tax, near, []string{skill}, at, radiusM, now, nil, limit), nil
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
