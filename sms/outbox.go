package sms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// Text is one message to one person, queued in the outbox.
type Text struct {
	// Key is unique per (incident, recipient, purpose): queueing the same
	// key twice queues one text, so a redelivered event never sends twice.
	Key       string
	Community string
	Incident  string
	Offer     string
	To        string
	Body      string
	Purpose   string
}

// Outbox states.
const (
	StatusPending     = "pending"
	StatusSending     = "sending"
	StatusSent        = "sent"
	StatusDelivered   = "delivered"
	StatusFailed      = "failed"
	StatusUndelivered = "undelivered"
)

// sendPayload is what sms.send messages carry.
type sendPayload struct {
	OutboxID string `json:"outbox_id"`
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
	id := events.NewID("sm", now)
	var got string
	err := q.QueryRow(ctx, `INSERT INTO sms_outbox (id, dedup_key, community_id, incident_id, offer_id, to_phone, body,
		purpose, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
		ON CONFLICT (dedup_key) DO NOTHING RETURNING id`,
		id, t.Key, t.Community, t.Incident, t.Offer, t.To, t.Body, t.Purpose, StatusPending, now.UnixMilli()).Scan(&got)
	if errors.Is(err, storage.ErrNoRows) {
		return events.Message{}, false, nil
	}
	if err != nil {
		return events.Message{}, false, fmt.Errorf("queue text %s: %w", t.Key, err)
	}
	ev, err := events.New("send:"+id, "sms.send", events.SMSSendSubject(t.Community), t.Community, now, sendPayload{OutboxID: id})
	if err != nil {
		return events.Message{}, false, err
	}
	m, err := events.EventMessage(ev, time.Time{})
	if err != nil {
		return events.Message{}, false, err
	}
	return m, true, events.Stage(ctx, q, now, m)
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
	ProviderSID string    `json:"provider_sid,omitempty"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

const queuedColumns = `id, dedup_key, community_id, incident_id, offer_id, to_phone, body, purpose, status,
	provider_sid, attempts, last_error, created_at`

func scanQueued(row storage.Row) (Queued, error) {
	var m Queued
	var at int64
	err := row.Scan(&m.ID, &m.Key, &m.Community, &m.Incident, &m.Offer, &m.To, &m.Body, &m.Purpose, &m.Status,
		&m.ProviderSID, &m.Attempts, &m.LastError, &at)
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
	rows, err := q.Query(ctx, `SELECT `+queuedColumns+` FROM sms_outbox WHERE incident_id = $1 ORDER BY created_at, id`, incident)
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

// RecordStatus applies a delivery receipt. A receipt that says the text
// will never arrive stages an sms.failed event, so whatever the text was for
// (an offer) can move on; it is returned for the relay.
func RecordStatus(ctx context.Context, db storage.DB, now time.Time, sid, status, errorCode string) ([]events.Message, error) {
	var staged []events.Message
	err := db.InTx(ctx, func(q storage.Querier) error {
		staged = nil
		m, err := scanQueued(q.QueryRow(ctx, `SELECT `+queuedColumns+` FROM sms_outbox WHERE provider_sid = $1`, sid))
		if errors.Is(err, storage.ErrNoRows) {
			return nil // not ours, or sent before a restore: nothing to do
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
		if next != StatusUndelivered {
			return nil
		}
		f, err := failedEvent(m, now, "undelivered "+errorCode)
		if err != nil {
			return err
		}
		staged = append(staged, f)
		return events.Stage(ctx, q, now, f)
	})
	return staged, err
}

func failedEvent(m Queued, now time.Time, reason string) (events.Message, error) {
	ev, err := events.New("failed:"+m.ID, "sms.failed", events.SMSFailedSubject, m.Community, now,
		FailedPayload{OutboxID: m.ID, Offer: m.Offer, Incident: m.Incident, Purpose: m.Purpose, Reason: reason})
	if err != nil {
		return events.Message{}, err
	}
	return events.EventMessage(ev, time.Time{})
}
