package api

import (
	_ "embed"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/plans"
	"github.com/shouwang/shouwang/responders"
)

func (s *server) createDrillSchedule(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	in := plans.DrillSchedule{Enabled: true}
	if err := decodeJSON(c, &in, true); err != nil {
		return err
	}
	if in.Community != "" && in.Community != id {
		return errdefs.Invalid("community", "must match the community in the path")
	}
	in.Community, in.CreatedBy = id, p.String()
	out, err := s.Drills.SaveSchedule(c.UserContext(), in)
	if err != nil {
		return err
	}
	s.recordAfter(c.UserContext(), audit.Entry{Actor: actorOf(c, p), Community: id, Action: "drill.schedule", ObjectKind: "drill_schedule",
		ObjectID: out.ID, Detail: map[string]any{"spec": out.Spec, "enabled": out.Enabled}})
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) listDrills(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher); err != nil {
		return err
	}
	scheds, err := s.Drills.Schedules(c.UserContext(), id)
	if err != nil {
		return err
	}
	drills, err := s.Drills.List(c.UserContext(), id, 100)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"schedules": scheds, "drills": drills})
}

func (s *server) deleteDrillSchedule(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	if err := s.Drills.DeleteSchedule(c.UserContext(), id, c.Params("schedule")); err != nil {
		return err
	}
	s.recordAfter(c.UserContext(), audit.Entry{Actor: actorOf(c, p), Community: id, Action: "drill.delete", ObjectKind: "drill_schedule",
		ObjectID: c.Params("schedule")})
	return c.SendStatus(fiber.StatusNoContent)
}

// runDrillRequest starts a drill now; key makes a retried request start
// the same drill once.
type runDrillRequest struct {
	Key string `json:"key"`
	plans.DrillSpec
}

func (s *server) runDrill(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	var in runDrillRequest
	if err := decodeJSON(c, &in, true); err != nil {
		return err
	}
	if len(in.Key) > 128 {
		return errdefs.Invalid("key", "at most 128 characters")
	}
	if in.Key == "" {
		in.Key = events.NewID("manual", s.Now())
	}
	out, err := s.Drills.Start(c.UserContext(), id, in.DrillSpec, "api:"+in.Key, "", p.String())
	if err != nil {
		return err
	}
	s.recordAfter(c.UserContext(), audit.Entry{Actor: actorOf(c, p), Community: id, Action: "drill.run", ObjectKind: "drill",
		ObjectID: out.ID, Detail: map[string]any{"key": in.Key}})
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) drillFor(c *fiber.Ctx) (plans.Drill, error) {
	if _, err := need(c, RoleAdmin, RoleDispatcher); err != nil {
		return plans.Drill{}, err
	}
	dr, err := s.Drills.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return plans.Drill{}, err
	}
	if _, err := needIn(c, dr.Community, RoleAdmin, RoleDispatcher); err != nil {
		return plans.Drill{}, err
	}
	return dr, nil
}

func (s *server) getDrill(c *fiber.Ctx) error {
	dr, err := s.drillFor(c)
	if err != nil {
		return err
	}
	return c.JSON(dr)
}

func (s *server) drillReport(c *fiber.Ctx) error {
	dr, err := s.drillFor(c)
	if err != nil {
		return err
	}
	if dr.Report == nil {
		return fmt.Errorf("drill %s is still running; its report is written when it ends at %s or when a dispatcher resolves incident %s: %w",
			dr.ID, dr.EndsAt.In(responders.Zone).Format("2006-01-02 15:04"), dr.Incident, errdefs.ErrConflict)
	}
	return c.JSON(dr.Report)
}

// drillPage is the readable after-action report.
//
//go:embed pages/drill.html
var drillPage []byte
