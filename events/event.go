// Package events is the language the parts of Shouwang speak to each other:
// the event envelope, the subjects, the incident taxonomy, and the JetStream
// bus with its durable consumers, dead letters and transactional outbox.
package events

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event is the one envelope every message on the bus carries.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Subject    string          `json:"subject"`
	Community  string          `json:"community,omitempty"`
	OccurredAt time.Time       `json:"occurred_at"`
	Actor      string          `json:"actor,omitempty"`
	Drill      bool            `json:"drill,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// New builds an event with a JSON payload. The id is also the JetStream
// Nats-Msg-Id, so it must be stable for the fact it reports: callers derive
// it from what happened (e.g. "opened:<incident>"), never from the clock.
func New(id, typ, subject, community string, at time.Time, payload any) (Event, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return Event{ID: id, Type: typ, Subject: subject, Community: community, OccurredAt: at.UTC(), Payload: raw}, nil
}

// Decode unmarshals the payload into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("decode %s payload of %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// crockford is Crockford's base32 alphabet: no I, L, O, U, easy to read aloud.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns a new random id that sorts by creation time, with a short
// prefix naming what it identifies ("in", "of", "sm"…).
func NewID(prefix string, now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return prefix + "_" + encode32(b[:])
}

func encode32(b []byte) string {
	var sb strings.Builder
	var acc uint32
	bits := 0
	for _, x := range b {
		acc = acc<<8 | uint32(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			sb.WriteByte(crockford[(acc>>uint(bits))&31])
		}
	}
	if bits > 0 {
		sb.WriteByte(crockford[(acc<<uint(5-bits))&31])
	}
	return sb.String()
}

// StableID derives an id from a hash of its parts, for facts that must get
// the same id however often they are reported (an alarm retried with its
// idempotency key).
func StableID(prefix string, sum []byte) string {
	if len(sum) > 15 {
		sum = sum[:15]
	}
	return prefix + "_" + encode32(sum)
}
