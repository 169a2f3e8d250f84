package sms

import (
	"strings"
	"time"

	"github.com/shouwang/shouwang/events"
)

// Inbound is a text a phone sent us, as the webhook received it.
type Inbound struct {
	SID  string `json:"sid"`
	From string `json:"from"`
	To   string `json:"to,omitempty"`
	Body string `json:"body"`
}

// Storable returns the text without NUL characters: PostgreSQL cannot
// store them, and no phone sends one on purpose. A text that kept one
// would fail on every retry and end with the dead letters, unanswered.
func (in Inbound) Storable() Inbound {
	drop := func(s string) string { return strings.ReplaceAll(s, "\x00", "") }
	return Inbound{SID: drop(in.SID), From: drop(in.From), To: drop(in.To), Body: drop(in.Body)}
}

// InboundMessage wraps an inbound text for the bus. Its id is the
// provider's message id, so a webhook Twilio calls twice is handled once.
func InboundMessage(in Inbound, now time.Time) (events.Message, error) {
	ev, err := events.New("inbound:"+in.SID, "sms.inbound", events.SMSInboundSubject, "", now, in)
	if err != nil {
		return events.Message{}, err
	}
	ev.Actor = in.From
	return events.EventMessage(ev, time.Time{})
}
