package sms

import (
	"context"
	"errors"
	"fmt"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// Call is one outgoing voice call: what it plays is TwiML.
type Call struct {
	To             string // E.164
	TwiML          string // a full <Response>…</Response> document
	StatusCallback string // optional
}

// Caller places voice calls and returns the provider's call id.
type Caller interface {
	Call(ctx context.Context, c Call) (sid string, err error)
}

// Call places a call through Twilio's Calls API with inline TwiML. Errors
// are classified as for Send.
func (t *Twilio) Call(ctx context.Context, c Call) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("twilio call: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, twilioSendTimeout)
	defer cancel()
	params := &openapi.CreateCallParams{}
	params.SetTo(c.To)
	params.SetFrom(t.from)
	params.SetTwiml(c.TwiML)
	if c.StatusCallback != "" {
		params.SetStatusCallback(c.StatusCallback)
	}
	call, err := t.api(ctx).CreateCall(params)
	if err != nil {
		return "", classifyTwilioError(err)
	}
	if call.Sid == nil || *call.Sid == "" {
		return "", errors.New("twilio call: response has no call sid")
	}
	return *call.Sid, nil
}

var _ Caller = (*Twilio)(nil)
