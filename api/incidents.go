package api

import (
	"context"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/plans"
	"github.com/shouwang/shouwang/responders"
)

type incidentView struct {
	incidents.Incident
	Severity      string       `json:"severity"`
	TypeLabel     events.Label `json:"type_label"`
	CategoryLabel events.Label `json:"category_label"`
}

// incidentDetail is one incident with everything a dispatcher follows: who
// was asked and what happened, in order. Both lists are always present.
type incidentDetail struct {
	incidentView
	Offers   []responders.Offer `json:"offers"`
	Timeline []incidents.Entry  `json:"timeline"`
	PlanRun  *plans.Run         `json:"plan_run"`
}

func (s *server) view(in incidents.Incident) incidentView {
	it, _ := s.Tax.Type(in.Type)
	return incidentView{Incident: in, Severity: in.Severity.Label(), TypeLabel: it.Label, CategoryLabel: s.Tax.Categories[in.Category]}
}

// canSee decides whether p may read an incident. Residents see the
// incidents they reported; everyone else sees their own community's.
func (s *server) canSee(c *fiber.Ctx, p Principal, in incidents.Incident) error {
	return s.canSeeIn(c.UserContext(), p, in.ID, in.Community)
}

// canSeeIn is canSee for an incident known by id and community, outside a
// request (a live stream's events).
func (s *server) canSeeIn(ctx context.Context, p Principal, id, community string) error {
	in := incidents.Incident{ID: id, Community: community}
	switch {
	case p.Role == RoleAdmin:
		return nil
	case p.Role == RoleResident && p.Community == in.Community:
		ok, err := incidents.ReportedBy(ctx, s.DB, in.ID, p.Community, p.Subject)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	case (p.Role == RoleDispatcher || p.Role == RoleOrg) && p.Community == in.Community:
		return nil
	case p.Role == RoleResponder && p.Community == in.Community:
		// Responders see the calls they were asked to, not every call.
		offers, err := s.Dispatcher.Offers(ctx, in.ID)
		if err != nil {
			return err
		}
		for _, o := range offers {
			if o.Responder == p.Subject {
				return nil
			}
		}
	}
	return fmt.Errorf("incident %s: %w", in.ID, errdefs.ErrNotFound)
}

func (s *server) getIncident(c *fiber.Ctx) error {
	p, err := need(c, RoleResident, RoleResponder, RoleDispatcher, RoleOrg, RoleAdmin)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	in, err := incidents.Get(ctx, s.DB, c.Params("id"))
	if err != nil {
		return err
	}
	if err := s.canSee(c, p, in); err != nil {
		return err
	}
	v := incidentDetail{incidentView: s.view(in)}
	if v.Offers, err = s.Dispatcher.Offers(ctx, in.ID); err != nil {
		return err
	}
	if p.Role == RoleResident || p.Role == RoleResponder {
		// Who declined or was never reached is the center's business; the
		// person who called for help needs to know who is coming.
		coming := []responders.Offer{}
		for _, o := range v.Offers {
			if o.Status == responders.OfferAccepted || (p.Role == RoleResponder && o.Responder == p.Subject) {
				coming = append(coming, o)
			}
		}
		v.Offers = coming
	}
	if v.Timeline, err = incidents.Timeline(ctx, s.DB, in.ID); err != nil {
		return err
	}
	if p.Role != RoleResident {
		if v.PlanRun, err = s.Runner.RunOf(ctx, in.ID); err != nil {
			return err
		}
	}
	return c.JSON(v)
}

func (s *server) listIncidents(c *fiber.Ctx) error {
	p, err := need(c, RoleResident, RoleDispatcher, RoleOrg, RoleAdmin)
	if err != nil {
		return err
	}
	f := incidents.Filter{Status: c.Query("status"), Community: c.Query("community"), Drills: c.Query("drills")}
	if f.Status != "" && !incidents.ValidStatus(f.Status) {
		return fieldError(fiber.StatusBadRequest, "status", "one of open, responding, escalated, resolved, active")
	}
	switch f.Drills {
	case "", "include", "exclude", "only":
	default:
		return fieldError(fiber.StatusBadRequest, "drills", "include, exclude or only")
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return fieldError(fiber.StatusBadRequest, "limit", "a number from 1 to 500")
		}
		f.Limit = n
	}
	if p.Role != RoleAdmin {
		if f.Community != "" && f.Community != p.Community {
			return fmt.Errorf("community %s: %w", f.Community, errdefs.ErrNotFound)
		}
		f.Community = p.Community
	}
	if p.Role == RoleResident {
		f.Resident = p.Subject
	}
	list, err := incidents.List(c.UserContext(), s.DB, f)
	if err != nil {
		return err
	}
	out := make([]incidentView, len(list))
	for i, in := range list {
		out[i] = s.view(in)
	}
	return c.JSON(fiber.Map{"incidents": out})
}

func (s *server) resolveIncident(c *fiber.Ctx) error {
	p, err := need(c, RoleDispatcher, RoleAdmin)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	in, err := incidents.Get(ctx, s.DB, c.Params("id"))
	if err != nil {
		return err
	}
	if !p.In(in.Community) {
		return fmt.Errorf("incident %s: %w", in.ID, errdefs.ErrNotFound)
	}
	in, err = s.Dispatcher.Resolve(ctx, in.ID, actorOf(c, p))
	if err != nil {
		return err
	}
	return c.JSON(s.view(in))
}
