package api

import (
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/incidents"
)

// The console's actions on one incident. Like resolve they are for the
// dispatchers of the incident's community and admins; each goes on the
// timeline with the caller as actor, and a closed incident is 409.

// actionTarget reads the incident a console action is about, if the
// caller may act on it. Another community's incident does not exist for
// them.
func (s *server) actionTarget(c *fiber.Ctx) (Principal, incidents.Incident, error) {
	p, err := need(c, RoleDispatcher, RoleAdmin)
	if err != nil {
		return p, incidents.Incident{}, err
	}
	in, err := incidents.Get(c.UserContext(), s.DB, c.Params("id"))
	if err != nil {
		return p, incidents.Incident{}, err
	}
	if !p.In(in.Community) {
		return p, incidents.Incident{}, fmt.Errorf("incident %s: %w", in.ID, errdefs.ErrNotFound)
	}
	return p, in, nil
}

// redispatch starts the next wave of offers now.
func (s *server) redispatch(c *fiber.Ctx) error {
	p, in, err := s.actionTarget(c)
	if err != nil {
		return err
	}
	if in, err = s.Dispatcher.Redispatch(c.UserContext(), in.ID, actorOf(c, p)); err != nil {
		return err
	}
	return c.JSON(s.view(in))
}

type assignRequest struct {
	Responder string `json:"responder"`
}

// assign sends a responder the dispatcher reached another way.
func (s *server) assign(c *fiber.Ctx) error {
	p, in, err := s.actionTarget(c)
	if err != nil {
		return err
	}
	var req assignRequest
	if err := decodeJSON(c, &req, true); err != nil {
		return err
	}
	if strings.TrimSpace(req.Responder) == "" {
		return errdefs.Invalid("responder", "required: the id of a responder of the incident's community")
	}
	ctx := c.UserContext()
	o, err := s.Dispatcher.Assign(ctx, in.ID, req.Responder, actorOf(c, p))
	if err != nil {
		return err
	}
	if in, err = incidents.Get(ctx, s.DB, in.ID); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"offer": o, "incident": s.view(in)})
}

// falseAlarm cancels the incident as a false alarm.
func (s *server) falseAlarm(c *fiber.Ctx) error {
	p, in, err := s.actionTarget(c)
	if err != nil {
		return err
	}
	if in, err = s.Dispatcher.FalseAlarm(c.UserContext(), in.ID, actorOf(c, p)); err != nil {
		return err
	}
	return c.JSON(s.view(in))
}

// markDrill marks the incident as a drill and ends it.
func (s *server) markDrill(c *fiber.Ctx) error {
	p, in, err := s.actionTarget(c)
	if err != nil {
		return err
	}
	if in, err = s.Dispatcher.MarkDrill(c.UserContext(), in.ID, actorOf(c, p)); err != nil {
		return err
	}
	return c.JSON(s.view(in))
}

// residentSafe is the resident page's "我安全了": the same as replying 我安全
// by text. Only a resident who reported the incident may say it; to
// anyone else's token the incident does not exist.
func (s *server) residentSafe(c *fiber.Ctx) error {
	p, err := need(c, RoleResident)
	if err != nil {
		return err
	}
	in, outcome, err := s.Dispatcher.ResidentSafe(c.UserContext(), c.Params("id"), p.Community, p.Subject)
	if err != nil {
		return err
	}
	// After the commit: the same change by text is the resident's own
	// word, not a staff change, and is not audited.
	s.recordAfter(c.UserContext(), audit.Entry{Actor: p.String(), Community: in.Community, Action: "incident.safe",
		ObjectKind: "incident", ObjectID: in.ID, Detail: map[string]any{"outcome": outcome}})
	return c.JSON(fiber.Map{"outcome": outcome, "incident": s.view(in)})
}
