package api

import (
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/responders"
)

// yearParam reads a year from the path or the query.
func yearParam(v string) (int, error) {
	y, err := strconv.Atoi(v)
	if err != nil {
		return 0, errdefs.Invalid("year", "a year from 2000 to 2100")
	}
	return y, responders.CheckYear(y)
}

// mayReadBudgets lets an organisation's user read training budgets if it
// is the owners' committee or the emergency center (they put the money in
// the budget), or, for one team's budget, that team itself. Dispatchers
// and admins read everything of their community.
func (s *server) mayReadBudgets(c *fiber.Ctx, community, team string) error {
	p, err := needIn(c, community, RoleAdmin, RoleDispatcher, RoleOrg)
	if err != nil || p.Role != RoleOrg {
		return err
	}
	if team != "" && p.Subject == team {
		return nil
	}
	o, err := s.Registry.GetOrganisation(c.UserContext(), community, p.Subject)
	if err == nil && (o.Kind == responders.OrgOwnersCommittee || o.Kind == responders.OrgEmergencyCenter) {
		return nil
	}
	return fmt.Errorf("organisation %s may not read training budgets: %w", p.Subject, errdefs.ErrForbidden)
}

func (s *server) putBudget(c *fiber.Ctx) error {
	id, team := c.Params("id"), c.Params("team")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	year, err := yearParam(c.Params("year"))
	if err != nil {
		return err
	}
	var in responders.BudgetInput
	if err := decodeJSON(c, &in, true); err != nil {
		return err
	}
	b, err := s.Training.SetBudget(c.UserContext(), id, team, year, in, p.String())
	if err != nil {
		return err
	}
	s.recordAfter(c.UserContext(), audit.Entry{Actor: actorOf(c, p), Community: id, Action: "budget.set", ObjectKind: "budget",
		ObjectID: fmt.Sprintf("%s/%d", team, year)})
	return c.JSON(b)
}

func (s *server) getBudget(c *fiber.Ctx) error {
	id, team := c.Params("id"), c.Params("team")
	if err := s.mayReadBudgets(c, id, team); err != nil {
		return err
	}
	year, err := yearParam(c.Params("year"))
	if err != nil {
		return err
	}
	b, err := s.Training.TeamBudget(c.UserContext(), id, team, year, true)
	if err != nil {
		return err
	}
	return c.JSON(b)
}

// postTraining records a course: 201 when new, 200 when the same entry
// (same id) was recorded before.
func (s *server) postTraining(c *fiber.Ctx) error {
	id, team := c.Params("id"), c.Params("team")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	var in responders.TrainingInput
	if err := decodeJSON(c, &in, true); err != nil {
		return err
	}
	e, created, err := s.Training.Record(c.UserContext(), id, team, in, p.String())
	if err != nil {
		return err
	}
	if created {
		s.recordAfter(c.UserContext(), audit.Entry{Actor: actorOf(c, p), Community: id, Action: "training.record", ObjectKind: "training",
			ObjectID: e.ID, Detail: map[string]any{"team": team}})
	}
	b, err := s.Training.TeamBudget(c.UserContext(), id, team, e.Year, false)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if created {
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(fiber.Map{"entry": e, "budget": b})
}

func (s *server) deleteTraining(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	if err := s.Training.DeleteEntry(c.UserContext(), id, c.Params("team"), c.Params("entry")); err != nil {
		return err
	}
	s.recordAfter(c.UserContext(), audit.Entry{Actor: actorOf(c, p), Community: id, Action: "training.delete", ObjectKind: "training",
		ObjectID: c.Params("entry"), Detail: map[string]any{"team": c.Params("team")}})
	return c.SendStatus(fiber.StatusNoContent)
}

// listBudgets lists every team's budget and spend for ?year= (this year
// in China by default).
func (s *server) listBudgets(c *fiber.Ctx) error {
	id := c.Params("id")
	if err := s.mayReadBudgets(c, id, ""); err != nil {
		return err
	}
	if _, err := s.Registry.GetCommunity(c.UserContext(), id); err != nil {
		return err
	}
	year := s.Now().In(responders.Zone).Year()
	if q := c.Query("year"); q != "" {
		y, err := yearParam(q)
		if err != nil {
			return err
		}
		year = y
	}
	bs, err := s.Training.Budgets(c.UserContext(), id, year)
	if err != nil {
		return err
	}
	var budget, spent responders.Fen
	for _, b := range bs {
		budget += b.Budget
		spent += b.Spent
	}
	return c.JSON(fiber.Map{"community": id, "year": year, "teams": bs, "budget": budget, "spent": spent})
}
