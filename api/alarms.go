package api

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/responders"
)

// postAlarm takes a resident's press. It answers 202 only once JetStream
// has stored the alarm; a retry with the same key gets the same alarm id.
func (s *server) postAlarm(c *fiber.Ctx) error {
	p, err := need(c, RoleResident)
	if err != nil {
		return err
	}
	if len(c.Body()) > alarmLimit {
		return &httpError{status: fiber.StatusRequestEntityTooLarge, code: "too_large", message: "an alarm is at most 16 KiB",
			fields: map[string]string{"body": "too large"}}
	}
	var req incidents.AlarmRequest
	if err := decodeJSON(c, &req, false); err != nil {
		return err
	}
	a, err := incidents.NewAlarm(s.Tax, p.Community, p.Subject, req, s.Now())
	if err != nil {
		return err
	}
	c.Locals(alarmTypeKey, a.Type)
	s.registeredPlace(c, &a)
	if err := s.Submitter.Submit(c.UserContext(), a); err != nil {
		s.Log.Warn("alarm not stored; client must retry", "alarm", a.ID, "err", err)
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"alarm_id": a.ID, "status": "received"})
}

// getAlarm tells a resident what became of their press.
func (s *server) getAlarm(c *fiber.Ctx) error {
	p, err := need(c, RoleResident)
	if err != nil {
		return err
	}
	st, err := incidents.GetAlarm(c.UserContext(), s.DB, c.Params("id"), p.Community, p.Subject)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

// registeredPlace fills in the resident's registered location and address
// when the press has none (the phone refused to share its position). The
// alarm goes ahead without them if the registry cannot be read: a press
// must never wait on the database.
func (s *server) registeredPlace(c *fiber.Ctx, a *incidents.Alarm) {
	if a.HasLocation && a.Address != "" {
		return
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 500*time.Millisecond)
	defer cancel()
	r, err := responders.ResidentIn(ctx, s.DB, a.Community, a.Resident)
	if err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) {
			s.Log.Warn("registered address not read; alarm goes on without it", "alarm", a.ID, "err", err)
		}
		return
	}
	if !a.HasLocation && r.Location != nil {
		a.Location, a.HasLocation = *r.Location, true
	}
	if a.Address == "" {
		a.Address = r.Address
	}
}
