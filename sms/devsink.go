package sms

import (
	"context"
	"fmt"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// DevSink is the provider used when no Twilio credentials are set: it
// records texts in the database instead of sending them, so a newcomer can
// see what would have gone out (GET /v1/dev/sms).
type DevSink struct {
	DB  storage.DB
	Now func() time.Time
}

// Send records the text.
func (d *DevSink) Send(ctx context.Context, m Outgoing) (string, error) {
	return d.record(ctx, "SMdev", ChannelSMS, m.To, m.Body)
}

// Call records the call with the TwiML it would have played.
func (d *DevSink) Call(ctx context.Context, c Call) (string, error) {
	return d.record(ctx, "CAdev", ChannelVoice, c.To, c.TwiML)
}

func (d *DevSink) record(ctx context.Context, prefix, channel, to, body string) (string, error) {
	now := d.Now()
	sid := events.NewID(prefix, now)
	if _, err := d.DB.Exec(ctx, `INSERT INTO dev_sms (sid, to_phone, body, created_at, channel) VALUES ($1, $2, $3, $4, $5)`,
		sid, to, body, now.UnixMilli(), channel); err != nil {
		return "", fmt.Errorf("dev sink: %w", err)
	}
	return sid, nil
}

// DevMessage is a text the dev sink recorded.
type DevMessage struct {
	SID  string    `json:"sid"`
	To   string    `json:"to"`
	Body string    `json:"body"`
	At   time.Time `json:"at"`
}

// List returns what was recorded on a channel (texts or calls), oldest
// first, optionally only to one phone.
func (d *DevSink) List(ctx context.Context, channel, to string, limit int) ([]DevMessage, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	rows, err := d.DB.Query(ctx, `SELECT sid, to_phone, body, created_at FROM (
		SELECT sid, to_phone, body, created_at FROM dev_sms WHERE ($1 = '' OR to_phone = $1) AND channel = $3
		ORDER BY created_at DESC, sid DESC LIMIT $2) AS recent ORDER BY created_at, sid`, to, limit, channel)
	if err != nil {
		return nil, fmt.Errorf("dev sink: %w", err)
	}
	defer rows.Close()
	out := []DevMessage{}
	for rows.Next() {
		var m DevMessage
		var at int64
		if err := rows.Scan(&m.SID, &m.To, &m.Body, &at); err != nil {
			return nil, err
		}
		m.At = time.UnixMilli(at).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}
