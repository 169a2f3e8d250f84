package sms

import (
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
