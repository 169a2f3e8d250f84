package sms

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// Sender hands queued texts to the provider, once each. It is the handler
// of the sms.send consumer.
type Sender struct {
	DB       storage.DB
	Provider Provider
	Relay    *events.Relay
	Log      *slog.Logger
	// Limiter caps texts per second to what the provider allows.
	Limiter *rate.Limiter
	// StatusCallback is the public URL of the delivery-receipt webhook, or "".
	StatusCallback string
	Now            func() time.Time
}

// Handle sends one queued text. A text already sent is not sent again; a
// provider outage returns an error so the bus retries with backoff; a text
// the provider refuses for good is marked failed and reported.
func (s *Sender) Handle(ctx context.Context, ev events.Event) error {
	var p sendPayload
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	m, err := Get(ctx, s.DB, p.OutboxID)
	if err != nil {
		return err
	}
	if m.Status != StatusPending && m.Status != StatusSending {
		return nil // sent, delivered or given up: redelivery must not send twice
	}
	if s.Limiter != nil {
		if err := s.Limiter.Wait(ctx); err != nil {
			return err
		}
	}
	now := s.Now()
	if _, err := s.DB.Exec(ctx, `UPDATE sms_outbox SET status = $2, attempts = attempts + 1, updated_at = $3 WHERE id = $1`,
		m.ID, StatusSending, now.UnixMilli()); err != nil {
		return fmt.Errorf("mark %s sending: %w", m.ID, err)
	}
	log := s.Log.With("outbox_id", m.ID, "to", Mask(m.To), "purpose", m.Purpose, "incident", m.Incident)
	sid, sendErr := s.Provider.Send(ctx, Outgoing{To: m.To, Body: m.Body, StatusCallback: s.StatusCallback})
	now = s.Now()
	switch {
	case sendErr == nil:
		if _, err := s.DB.Exec(ctx, `UPDATE sms_outbox SET status = $2, provider_sid = $3, sent_at = $4, updated_at = $4,
			last_error = '' WHERE id = $1`, m.ID, StatusSent, sid, now.UnixMilli()); err != nil {
			// The text is out. Retrying would send it again, so say so and stop.
			log.Error("text sent but not recorded as sent", "sid", sid, "err", err)
		}
		log.Info("text sent", "sid", sid)
		return nil
	case IsPermanent(sendErr):
		var staged []events.Message
		err := s.DB.InTx(ctx, func(q storage.Querier) error {
			if _, err := q.Exec(ctx, `UPDATE sms_outbox SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1`,
				m.ID, StatusFailed, sendErr.Error(), now.UnixMilli()); err != nil {
				return err
			}
			f, err := failedEvent(m, now, sendErr.Error())
			if err != nil {
				return err
			}
			staged = []events.Message{f}
			return events.Stage(ctx, q, now, f)
		})
		if err != nil {
			return fmt.Errorf("mark %s failed: %w", m.ID, err)
		}
		s.Relay.Send(ctx, staged)
		log.Warn("text refused by provider", "err", sendErr)
		return nil
	default:
		if _, err := s.DB.Exec(ctx, `UPDATE sms_outbox SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1`,
			m.ID, StatusPending, sendErr.Error(), now.UnixMilli()); err != nil {
			log.Warn("record send error", "err", err)
		}
		log.Warn("provider unavailable; will retry", "err", sendErr)
		return fmt.Errorf("send %s: %w", m.ID, sendErr)
	}
}
