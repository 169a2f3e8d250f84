package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/metrics"
	"github.com/shouwang/shouwang/storage"
)

// Text is one message to one person, queued in the outbox. It has no body:
// every text is a named template with parameters, rendered when queued.
type Text struct {
	// Key is unique per (incident, recipient, purpose): queueing the same
	// key twice queues one text, so a redelivered event never sends twice.
	Key       string
	Community string
	Incident  string
	Offer     string
	To        string
	Template  string
	Params    map[string]string
	Locale    string
	Drill     bool
	Purpose   string
	// Channel is ChannelSMS (the default) or ChannelVoice.
	Channel string
	// Bulk marks a text that can wait (reminders): it goes to a sender of
	// its own that takes only the provider capacity live texts leave.
	Bulk bool
}

// Channels a text can go out on.
const (
	ChannelSMS   = "sms"
	ChannelVoice = "voice"
)

// Outbox states.
const (
	StatusPending     = "pending"
	StatusSending     = "sending"
	StatusSent        = "sent"
	StatusDelivered   = "delivered"
	StatusFailed      = "failed"
	StatusUndelivered = "undelivered"
)

// sendPayload is what sms.send messages carry: the texts of one
// transaction share one message (OutboxIDs), and OutboxID names the first
// of them, which is all a message staged before OutboxIDs existed carries.
type sendPayload struct {
	OutboxID  string   `json:"outbox_id"`
	OutboxIDs []string `json:"outbox_ids,omitempty"`
}

// ids lists the texts the message wakes the sender for.
func (p sendPayload) ids() []string {
	if len(p.OutboxIDs) > 0 {
		return p.OutboxIDs
	}
	return []string{p.OutboxID}
}

// FailedPayload is what sms.failed events carry: a text that will not arrive.
type FailedPayload struct {
	OutboxID string `json:"outbox_id"`
	Offer    string `json:"offer,omitempty"`
	Incident string `json:"incident,omitempty"`
	Purpose  string `json:"purpose"`
	Reason   string `json:"reason"`
}

// Enqueue queues t inside the caller's transaction and stages the message
// that wakes the sender. It returns the staged message (for the relay) and
// false if a text with the same key was queued before.
func Enqueue(ctx context.Context, q storage.Querier, now time.Time, t Text) (events.Message, bool, error) {
	staged, err := QueueAll(ctx, q, now, t)
	if err != nil || len(staged) == 0 {
		return events.Message{}, false, err
	}
	return staged[0], true, nil
}

// Queue is Enqueue for handlers that collect what to relay: it returns the
// staged message in a slice, empty when the key was queued before.
func Queue(ctx context.Context, q storage.Querier, now time.Time, t Text) ([]events.Message, error) {
	return QueueAll(ctx, q, now, t)
}

// QueueAll queues texts inside the caller's transaction and stages one
// message that wakes the sender for all of them (one for the live texts,
// one for the bulk ones). One message a text was six of an alarm's
// seventeen JetStream messages, each stored with fsync (issue 8). It
// returns the staged messages for the relay; texts whose key was queued
// before are skipped.
func QueueAll(ctx context.Context, q storage.Querier, now time.Time, texts ...Text) ([]events.Message, error) {
	ids, err := insertTexts(ctx, q, now, texts)
	if err != nil {
		return nil, err
	}
	var live, bulk []string
	community := ""
	for i, t := range texts {
		if ids[i] == "" {
			continue // queued before
		}
		if len(live)+len(bulk) > 0 && t.Community != community {
			return nil, fmt.Errorf("queue text %s: texts of communities %s and %s in one wake-up", t.Key, community, t.Community)
		}
		community = t.Community
		if t.Bulk {
			bulk = append(bulk, ids[i])
		} else {
			live = append(live, ids[i])
		}
	}
	var staged []events.Message
	for _, w := range []struct {
		subject string
		ids     []string
	}{{events.SMSSendSubject(community), live}, {events.SMSBulkSubject(community), bulk}} {
		if len(w.ids) == 0 {
			continue
		}
		p := sendPayload{OutboxID: w.ids[0]}
		if len(w.ids) > 1 {
			p.OutboxIDs = w.ids
		}
		ev, err := events.New("send:"+w.ids[0], "sms.send", w.subject, community, now, p)
		if err != nil {
			return nil, err
		}
		m, err := events.EventMessage(ev, time.Time{})
		if err != nil {
			return nil, err
		}
		staged = append(staged, m)
	}
	if len(staged) == 0 {
		return nil, nil
	}
	return staged, events.Stage(ctx, q, now, staged...)
}

// outboxCols are the columns insertTexts writes, in the order of its values.
const outboxCols = 16

// insertChunk bounds the texts of one INSERT: 1,600 bound values, well
// under both databases' limits.
const insertChunk = 100

// insertTexts writes texts to the outbox, one statement for up to
// insertChunk of them: a statement a text was the costliest statement of an
// alarm in SQLite's one writer (issue 8). It returns each text's new row
// id, or "" where a text with the same key was queued before. q is the
// caller's transaction, as for every queued text (Enqueue).
func insertTexts(ctx context.Context, q storage.Querier, now time.Time, texts []Text) ([]string, error) {
	ids := make([]string, len(texts))
	for start := 0; start < len(texts); start += insertChunk {
		chunk := texts[start:min(start+insertChunk, len(texts))]
		args := make([]any, 0, len(chunk)*outboxCols)
		for i, t := range chunk {
			row, err := outboxRow(t, now)
			if err != nil {
				return nil, err
			}
			ids[start+i] = row[0].(string)
			args = append(args, row...)
		}
		// The rows a conflict skipped return nothing: whichever id did not
		// come back was queued before, under its key.
		inserted, err := storage.StringSet(ctx, q, `INSERT INTO sms_outbox (id, dedup_key, community_id, incident_id, offer_id,
			to_phone, body, purpose, status, created_at, updated_at, template, params, locale, channel, body_key)
			VALUES `+storage.Tuples(len(chunk), outboxCols)+` ON CONFLICT (dedup_key) DO NOTHING RETURNING id`, args...)
		if err != nil {
			return nil, fmt.Errorf("queue text %s: %w", chunk[0].Key, err)
		}
		for i := range chunk {
			if !inserted[ids[start+i]] {
				ids[start+i] = ""
			}
		}
	}
	return ids, nil
}

// outboxRow is one text's values in outboxCols order, its new id first.
func outboxRow(t Text, now time.Time) ([]any, error) {
	if _, ok := Templates[t.Template]; !ok {
		return nil, fmt.Errorf("queue text %s: no template %q", t.Key, t.Template)
	}
	if t.Locale == "" {
		t.Locale = "zh-CN"
	}
	if t.Channel == "" {
		t.Channel = ChannelSMS
	}
	if t.Params == nil {
		t.Params = map[string]string{}
	}
	params, err := json.Marshal(t.Params)
	if err != nil {
		return nil, err
	}
	body := Render(t.Template, t.Locale, t.Params, t.Drill)
	at := now.UnixMilli() // created and last updated
	return []any{events.NewID("sm", now), t.Key, t.Community, t.Incident, t.Offer, t.To, body, t.Purpose, StatusPending,
		at, at, t.Template, string(params), t.Locale, t.Channel, bodyKey(body)}, nil
}

// Queued is a text as the outbox holds it.
type Queued struct {
	ID          string    `json:"id"`
	Key         string    `json:"key"`
	Community   string    `json:"community,omitempty"`
	Incident    string    `json:"incident,omitempty"`
	Offer       string    `json:"offer,omitempty"`
	To          string    `json:"to"`
	Body        string    `json:"body"`
	Purpose     string    `json:"purpose"`
	Status      string    `json:"status"`
	Template    string    `json:"template"`
	Params      string    `json:"params"`
	Locale      string    `json:"locale"`
	Channel     string    `json:"channel"`
	ProviderSID string    `json:"provider_sid,omitempty"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

const queuedColumns = `id, dedup_key, community_id, incident_id, offer_id, to_phone, body, purpose, status,
	template, params, locale, channel, provider_sid, attempts, last_error, created_at`

func scanQueued(row storage.Row) (Queued, error) {
	var m Queued
	var at int64
	err := row.Scan(&m.ID, &m.Key, &m.Community, &m.Incident, &m.Offer, &m.To, &m.Body, &m.Purpose, &m.Status,
		&m.Template, &m.Params, &m.Locale, &m.Channel, &m.ProviderSID, &m.Attempts, &m.LastError, &at)
	m.CreatedAt = time.UnixMilli(at).UTC()
	return m, err
}

// Get reads one queued text.
func Get(ctx context.Context, q storage.Querier, id string) (Queued, error) {
	m, err := scanQueued(q.QueryRow(ctx, `SELECT `+queuedColumns+` FROM sms_outbox WHERE id = $1`, id))
	if errors.Is(err, storage.ErrNoRows) {
		return Queued{}, fmt.Errorf("text %s: %w", id, errdefs.ErrNotFound)
	}
	return m, err
}

// ListFor lists the texts queued for an incident, oldest first.
func ListFor(ctx context.Context, q storage.Querier, incident string) ([]Queued, error) {
	rows, err := q.Query(ctx, `SELECT `+queuedColumns+` FROM sms_outbox WHERE incident_id = $1 AND incident_id <> ''
		ORDER BY created_at, id`, incident)
	if err != nil {
		return nil, fmt.Errorf("texts of %s: %w", incident, err)
	}
	defer rows.Close()
	out := []Queued{}
	for rows.Next() {
		m, err := scanQueued(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ErrUnknownSID: a receipt names a message we have no record of (yet: a
// fast receipt can overtake the sender recording the id it got).
var ErrUnknownSID = errors.New("no text with that provider id")

// Receipt is a delivery receipt as the webhook received it.
type Receipt struct {
	SID       string    `json:"sid"`
	Status    string    `json:"status"`
	ErrorCode string    `json:"error_code,omitempty"`
	At        time.Time `json:"at"`
}

// ReceiptMessage wraps a receipt for the bus; its id makes a receipt
// Twilio sends twice count once.
func ReceiptMessage(r Receipt) (events.Message, error) {
	ev, err := events.New("status:"+r.SID+":"+r.Status, "sms.status", events.SMSStatusSubject, "", r.At, r)
	if err != nil {
		return events.Message{}, err
	}
	return events.EventMessage(ev, time.Time{})
}

// Receipts applies delivery receipts from the bus.
type Receipts struct {
	DB    storage.DB
	Relay *events.Relay
	Log   *slog.Logger
	Now   func() time.Time
	// Metrics counts texts delivered and undelivered; nil counts nothing.
	Metrics *metrics.Set
}

// Handle records one receipt. A receipt for an id we do not know yet is
// retried for a while, then dropped with a log line: it is not ours.
func (r *Receipts) Handle(ctx context.Context, ev events.Event) error {
	var rc Receipt
	if err := ev.Decode(&rc); err != nil {
		return events.Permanent(err)
	}
	now := r.Now()
	staged, applied, err := recordStatus(ctx, r.DB, now, rc.SID, rc.Status, rc.ErrorCode)
	if errors.Is(err, ErrUnknownSID) {
		if now.Sub(rc.At) < 2*time.Minute {
			return events.RetryAfter(time.Second, err)
		}
		r.Log.Warn("delivery receipt for a message we never sent; ignored", "sid", rc.SID, "status", rc.Status)
		return nil
	}
	if err != nil {
		return err
	}
	if applied != "" {
		r.Metrics.SMS(ChannelSMS, applied, 1)
	}
	r.Relay.Send(ctx, staged)
	return nil
}

// RecordStatus applies a delivery receipt. A receipt that says the text
// will never arrive stages an sms.failed event, so whatever the text was for
// (an offer) can move on; it is returned for the relay.
func RecordStatus(ctx context.Context, db storage.DB, now time.Time, sid, status, errorCode string) ([]events.Message, error) {
	staged, _, err := recordStatus(ctx, db, now, sid, status, errorCode)
	return staged, err
}

// recordStatus is RecordStatus that also returns the status the text moved
// to, or "" when the receipt changed nothing (a repeat, or not final).
func recordStatus(ctx context.Context, db storage.DB, now time.Time, sid, status, errorCode string) ([]events.Message, string, error) {
	var staged []events.Message
	applied := ""
	err := db.InTx(ctx, func(q storage.Querier) error {
		staged, applied = nil, ""
		m, err := scanQueued(q.QueryRow(ctx, `SELECT `+queuedColumns+` FROM sms_outbox WHERE provider_sid = $1 AND provider_sid <> ''`, sid))
		if errors.Is(err, storage.ErrNoRows) {
			return ErrUnknownSID
		}
		if err != nil {
			return fmt.Errorf("text with sid %s: %w", sid, err)
		}
		next := ""
		switch status {
		case "delivered":
			next = StatusDelivered
		case "undelivered", "failed":
			next = StatusUndelivered
		default:
			return nil // queued, sending, sent: we know already
		}
		if m.Status == StatusDelivered || m.Status == StatusUndelivered || m.Status == StatusFailed {
			return nil // receipts can repeat and arrive out of order; the first final one wins
		}
		if _, err := q.Exec(ctx, `UPDATE sms_outbox SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1`,
			m.ID, next, errorCode, now.UnixMilli()); err != nil {
			return fmt.Errorf("record receipt of %s: %w", m.ID, err)
		}
		applied = next
		if next != StatusUndelivered {
			return nil
		}
		// Offers bundled into this text never arrived either.
		rows, err := q.Query(ctx, `SELECT `+queuedColumns+` FROM sms_outbox WHERE bundled_into = $1`, m.ID)
		if err != nil {
			return err
		}
		lost := []Queued{m}
		for rows.Next() {
			b, err := scanQueued(rows)
			if err != nil {
				rows.Close()
				return err
			}
			lost = append(lost, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, l := range lost {
			f, err := failedEvent(l, now, "undelivered "+errorCode)
			if err != nil {
				return err
			}
			staged = append(staged, f)
		}
		return events.Stage(ctx, q, now, staged...)
	})
	return staged, applied, err
}

func failedEvent(m Queued, now time.Time, reason string) (events.Message, error) {
	ev, err := events.New("failed:"+m.ID, "sms.failed", events.SMSFailedSubject, m.Community, now,
		FailedPayload{OutboxID: m.ID, Offer: m.Offer, Incident: m.Incident, Purpose: m.Purpose, Reason: reason})
	if err != nil {
		return events.Message{}, err
	}
	return events.EventMessage(ev, time.Time{})
}

// bodyKey is a hash of a text's words, kept with the text so that the
// identical-text check (Sender.sentBefore) looks up the texts with the same
// words by index instead of reading every text the phone got within the
// window. Never 0: 0 marks the texts queued before the column existed.
func bodyKey(body string) int64 {
	h := fnv.New64a()
	h.Write([]byte(body))
	return int64(h.Sum64() | 1)
}
