package api

import (
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/plans"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
)

// postPlan stores a new version of a plan sent as YAML. A dispatcher
// writes plans for their own community only.
func (s *server) postPlan(c *fiber.Ctx) error {
	p, err := need(c, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	if !strings.Contains(ct, "yaml") && !strings.HasPrefix(ct, "text/plain") {
		return fieldError(fiber.StatusUnsupportedMediaType, "content-type", "send the plan as application/yaml")
	}
	plan, err := plans.Parse(s.Tax, c.Body())
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if plan.Community != "" {
		if _, err := s.Registry.GetCommunity(ctx, plan.Community); err != nil {
			return errdefs.Invalid("community", "no community "+plan.Community)
		}
	}
	if p.Role == RoleDispatcher {
		if plan.Community != p.Community {
			return fmt.Errorf("a dispatcher writes plans for their own community (community: %s): %w", p.Community, errdefs.ErrForbidden)
		}
		if prev, err := s.Plans.Get(ctx, plan.ID); err == nil && prev.Community != p.Community {
			return fmt.Errorf("plan %s belongs to another community or to all: %w", plan.ID, errdefs.ErrForbidden)
		}
	}
	var saved plans.Plan
	err = s.audited(ctx, func(db storage.DB) (e audit.Entry, err error) {
		store := *s.Plans
		store.DB = db
		if saved, err = store.Save(ctx, plan, p.String()); err != nil {
			return e, err
		}
		action := "plan.update"
		if saved.Version == 1 {
			action = "plan.create"
		}
		return audit.Entry{Actor: actorOf(c, p), Community: saved.Community, Action: action, ObjectKind: "plan",
			ObjectID: saved.ID, Detail: map[string]any{"version": saved.Version}}, nil
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(planView(saved))
}

type planJSON struct {
	plans.Plan
	Severity map[string]string `json:"severity"`
	Document string            `json:"document,omitempty"`
}

func planView(p plans.Plan) planJSON {
	return planJSON{Plan: p, Severity: map[string]string{"from": sevLabel(p.SevFrom), "to": sevLabel(p.SevTo)}}
}

func sevLabel(n int) string { return [...]string{"", "I", "II", "III", "IV"}[min(max(n, 0), 4)] }

// listPlans lists the newest version of each plan a caller may use.
func (s *server) listPlans(c *fiber.Ctx) error {
	p, err := need(c, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	all, err := s.Plans.Latest(c.UserContext(), s.DB)
	if err != nil {
		return err
	}
	out := []planJSON{}
	for _, pl := range all {
		if p.Role == RoleAdmin || pl.Community == "" || pl.Community == p.Community {
			out = append(out, planView(pl))
		}
	}
	return c.JSON(fiber.Map{"plans": out})
}

func (s *server) getPlan(c *fiber.Ctx) error {
	p, err := need(c, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	pl, err := s.Plans.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	if p.Role != RoleAdmin && pl.Community != "" && pl.Community != p.Community {
		return fmt.Errorf("plan %s: %w", pl.ID, errdefs.ErrNotFound)
	}
	v := planView(pl)
	v.Document = pl.Doc
	return c.JSON(v)
}

// dutyActor checks that the caller may act on a duty: the organisation it
// was given to, the responder it was given to, or the community's
// dispatcher. Others get 403, whatever their community.
func (s *server) dutyActor(c *fiber.Ctx) (Principal, plans.Duty, error) {
	p, err := need(c, RoleAdmin, RoleDispatcher, RoleOrg, RoleResponder)
	if err != nil {
		return p, plans.Duty{}, err
	}
	d, err := s.Runner.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return p, d, err
	}
	ok := p.Role == RoleAdmin ||
		(p.Community == d.Community && (p.Role == RoleDispatcher ||
			(p.Role == RoleOrg && d.Org != "" && p.Subject == d.Org) ||
			(p.Role == RoleResponder && d.Responder != "" && p.Subject == d.Responder)))
	if !ok {
		return p, d, fmt.Errorf("duty %s is not yours: %w", d.ID, errdefs.ErrForbidden)
	}
	return p, d, nil
}

func (s *server) ackDuty(c *fiber.Ctx) error  { return s.actDuty(c, false) }
func (s *server) doneDuty(c *fiber.Ctx) error { return s.actDuty(c, true) }

func (s *server) actDuty(c *fiber.Ctx, done bool) error {
	p, d, err := s.dutyActor(c)
	if err != nil {
		return err
	}
	d, outcome, err := s.Runner.Act(c.UserContext(), d.ID, done, p.String())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"duty": d, "outcome": outcome})
}

// listDuties lists duties: mine=1 the caller's open ones (an organisation's
// or a responder's); a dispatcher sees the community's.
func (s *server) listDuties(c *fiber.Ctx) error {
	p, err := need(c, RoleDispatcher, RoleOrg, RoleResponder)
	if err != nil {
		return err
	}
	f := plans.DutyFilter{Community: p.Community, OpenOnly: c.Query("mine") == "1" || c.Query("open") == "1"}
	switch p.Role {
	case RoleOrg:
		f.Org = p.Subject
	case RoleResponder:
		f.Responder = p.Subject
	}
	if (p.Role == RoleOrg || p.Role == RoleResponder) && c.Query("mine") != "1" {
		return fieldError(fiber.StatusBadRequest, "mine", "organisation and responder users list their own duties: mine=1")
	}
	list, err := s.Runner.List(c.UserContext(), f)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"duties": list})
}

// Vulnerable residents are seen by dispatchers, and each by whoever was
// given a duty about them.

func (s *server) createVulnerable(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher); err != nil {
		return err
	}
	in, err := decodeResident(c, id)
	if err != nil {
		return err
	}
	if in.Vulnerable == "" {
		in.Vulnerable = responders.VulnerableOther
	}
	if in.Location == nil {
		return errdefs.Invalid("location", "required: duties go to whoever is nearest")
	}
	out, err := s.Registry.CreateResident(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) listVulnerable(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher); err != nil {
		return err
	}
	limit, offset := page(c)
	out, err := s.Registry.ListResidents(c.UserContext(), id, true, limit, offset)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"vulnerable_residents": out})
}

func (s *server) getVulnerable(c *fiber.Ctx) error {
	id, rid := c.Params("id"), c.Params("rid")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher, RoleOrg, RoleResponder)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if p.Role == RoleOrg || p.Role == RoleResponder {
		f := plans.DutyFilter{Community: id}
		if p.Role == RoleOrg {
			f.Org = p.Subject
		} else {
			f.Responder = p.Subject
		}
		duties, err := s.Runner.List(ctx, f)
		if err != nil {
			return err
		}
		mine := false
		for _, d := range duties {
			mine = mine || d.Resident == rid
		}
		if !mine {
			return fmt.Errorf("resident %s: %w", rid, errdefs.ErrForbidden)
		}
	}
	r, err := s.Registry.GetResident(ctx, id, rid)
	if err != nil {
		return err
	}
	if r.Vulnerable == "" {
		return fmt.Errorf("vulnerable resident %s: %w", rid, errdefs.ErrNotFound)
	}
	return c.JSON(r)
}
