package api

import (
	"fmt"
	"html"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms"
)

// emptyTwiML answers Twilio without sending anything back: confirmations go
// through the outbox like every other text, so they are recorded and sent once.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// signedForm checks X-Twilio-Signature against the URL Twilio called and
// returns the form. Anything unsigned is refused with 403.
func (s *server) signedForm(c *fiber.Ctx) (map[string]string, error) {
	if s.TwilioAuthToken == "" {
		return nil, newError(fiber.StatusForbidden, "forbidden", "webhooks need TWILIO_AUTH_TOKEN to check signatures")
	}
	params := map[string]string{}
	c.Request().PostArgs().VisitAll(func(k, v []byte) { params[string(k)] = string(v) })
	base := strings.TrimRight(s.PublicURL, "/")
	if base == "" {
		base = c.BaseURL()
	}
	url := base + c.OriginalURL()
	sig := c.Get("X-Twilio-Signature")
	if sig == "" || !sms.ValidTwilioSignature(s.TwilioAuthToken, url, params, sig) {
		s.Log.Warn("webhook with a bad or missing signature", "path", c.Path(), "ip", s.clientIP(c))
		return nil, newError(fiber.StatusForbidden, "forbidden", "bad or missing X-Twilio-Signature")
	}
	return params, nil
}

// twilioSMS takes a text from a phone. It is stored on the bus and handled
// there, so a reply is never lost to a busy database.
func (s *server) twilioSMS(c *fiber.Ctx) error {
	form, err := s.signedForm(c)
	if err != nil {
		return err
	}
	in := sms.Inbound{SID: form["MessageSid"], From: form["From"], To: form["To"], Body: form["Body"]}
	if in.SID == "" || in.From == "" {
		return fieldError(fiber.StatusBadRequest, "MessageSid", "MessageSid and From are required")
	}
	if err := s.publishInbound(c, in); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/xml")
	return c.SendString(emptyTwiML)
}

func (s *server) publishInbound(c *fiber.Ctx, in sms.Inbound) error {
	m, err := sms.InboundMessage(in, s.Now())
	if err != nil {
		return err
	}
	if err := s.Bus.Publish(c.UserContext(), m); err != nil {
		s.Log.Warn("inbound text not stored", "sid", in.SID, "from", sms.Mask(in.From), "err", err)
		return fmt.Errorf("store inbound text: %w", errdefs.ErrUnavailable)
	}
	return nil
}

// twilioStatus records a delivery receipt.
func (s *server) twilioStatus(c *fiber.Ctx) error {
	form, err := s.signedForm(c)
	if err != nil {
		return err
	}
	sid, status := form["MessageSid"], form["MessageStatus"]
	if sid == "" || status == "" {
		return fieldError(fiber.StatusBadRequest, "MessageSid", "MessageSid and MessageStatus are required")
	}
	// On the bus, not straight to the database: a receipt can arrive before
	// the sender has recorded the id, and Twilio does not send it again.
	m, err := sms.ReceiptMessage(sms.Receipt{SID: sid, Status: status, ErrorCode: form["ErrorCode"], At: s.Now()})
	if err != nil {
		return err
	}
	if err := s.Bus.Publish(c.UserContext(), m); err != nil {
		return fmt.Errorf("store receipt: %w", errdefs.ErrUnavailable)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// devSMS lists what the dev sink recorded (admin; only without Twilio).
func (s *server) devSMS(c *fiber.Ctx) error {
	if _, err := need(c, RoleAdmin); err != nil {
		return err
	}
	if s.DevSink == nil {
		return newError(fiber.StatusNotFound, "not_found", "texts go to Twilio; the dev sink is off")
	}
	limit, _ := strconv.Atoi(c.Query("limit", "200"))
	list, err := s.DevSink.List(c.UserContext(), sms.ChannelSMS, c.Query("to"), limit)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"messages": list})
}

type devInboundRequest struct {
	From string `json:"from"`
	To   string `json:"to"` // the number texted: a community's sms_number; optional
	Body string `json:"body"`
}

// devInbound plays a text from a phone through the same path as Twilio's
// webhook, so the reply flow can be tried without Twilio (admin; dev sink only).
func (s *server) devInbound(c *fiber.Ctx) error {
	if _, err := need(c, RoleAdmin); err != nil {
		return err
	}
	if s.DevSink == nil {
		return newError(fiber.StatusNotFound, "not_found", "texts go to Twilio; the dev sink is off")
	}
	var req devInboundRequest
	if err := decodeJSON(c, &req, true); err != nil {
		return err
	}
	if !responders.ValidPhone(req.From) {
		return errdefs.Invalid("from", "an E.164 number such as +8613800000000")
	}
	if req.To != "" && !responders.ValidPhone(req.To) {
		return errdefs.Invalid("to", "an E.164 number such as +8610690000000")
	}
	now := s.Now()
	in := sms.Inbound{SID: events.NewID("SMin", now), From: req.From, To: req.To, Body: req.Body}
	if err := s.publishInbound(c, in); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"sid": in.SID, "status": "received"})
}

// deadLetters lists messages that failed for good (admin).
func (s *server) deadLetters(c *fiber.Ctx) error {
	if _, err := need(c, RoleAdmin); err != nil {
		return err
	}
	list, err := s.Bus.DeadLetters(c.UserContext(), 100)
	if err != nil {
		return err
	}
	if list == nil {
		list = []events.DeadLetter{} // [] like every other list, not null
	}
	return c.JSON(fiber.Map{"dead_letters": list})
}

// twilioVoice takes the key a responder pressed during an offer call:
// 1 accepts, 2 declines. The answer is spoken back.
func (s *server) twilioVoice(c *fiber.Ctx) error {
	form, err := s.signedForm(c)
	if err != nil {
		return err
	}
	offerID := c.Query("offer")
	reply := map[string]sms.Reply{"1": sms.ReplyAccept, "2": sms.ReplyDecline}[form["Digits"]]
	locale := "zh-CN"
	say := func(tpl string) error {
		lang := "zh-CN"
		if strings.HasPrefix(locale, "en") {
			lang = "en-US"
		}
		c.Set(fiber.HeaderContentType, "text/xml")
		return c.SendString(`<?xml version="1.0" encoding="UTF-8"?><Response><Say language="` + lang + `">` +
			html.EscapeString(sms.Render(tpl, locale, nil, false)) + `</Say></Response>`)
	}
	if offerID == "" {
		return fieldError(fiber.StatusBadRequest, "offer", "required")
	}
	if reply == sms.ReplyUnknown {
		return say(sms.TplVoiceNoInput)
	}
	o, outcome, err := s.Dispatcher.AnswerOffer(c.UserContext(), offerID, reply, "responder by call")
	if err != nil {
		return err
	}
	locale = o.Locale
	switch outcome {
	case responders.OutcomeAccepted:
		return say(sms.TplVoiceAccepted)
	case responders.OutcomeDeclined:
		return say(sms.TplVoiceDeclined)
	}
	return say(sms.TplVoiceClosed)
}

// devCalls lists the calls the dev sink recorded (admin; only without Twilio).
func (s *server) devCalls(c *fiber.Ctx) error {
	if _, err := need(c, RoleAdmin); err != nil {
		return err
	}
	if s.DevSink == nil {
		return newError(fiber.StatusNotFound, "not_found", "calls go to Twilio; the dev sink is off")
	}
	limit, _ := strconv.Atoi(c.Query("limit", "200"))
	list, err := s.DevSink.List(c.UserContext(), sms.ChannelVoice, c.Query("to"), limit)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"calls": list})
}
