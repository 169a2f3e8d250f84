package api

import (
	_ "embed"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
)

func (s *server) saveGrid(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	var g responders.Grid
	if err := decodeJSON(c, &g, true); err != nil {
		return err
	}
	if g.Community != "" && g.Community != id {
		return errdefs.Invalid("community", "must match the community in the path")
	}
	g.Community = id
	var out responders.Grid
	err = s.audited(c.UserContext(), func(db storage.DB) (e audit.Entry, err error) {
		out, err = s.registryIn(db).SaveGrid(c.UserContext(), g)
		return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "grid.save", ObjectKind: "grid", ObjectID: out.ID}, err
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) listGrids(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher, RoleOrg); err != nil {
		return err
	}
	out, err := s.Registry.ListGrids(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"grids": out})
}

func (s *server) deleteGrid(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	grid := c.Params("grid")
	err = s.audited(c.UserContext(), func(db storage.DB) (audit.Entry, error) {
		return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "grid.delete", ObjectKind: "grid", ObjectID: grid},
			s.registryIn(db).DeleteGrid(c.UserContext(), id, grid)
	})
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// readiness reports coverage gaps. It holds counts only, no one's name or
// number, so the property company and owners' committee may read it too.
func (s *server) readiness(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher, RoleOrg); err != nil {
		return err
	}
	need := 1
	if q := c.Query("need"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 50 {
			return errdefs.Invalid("need", "a whole number from 1 to 50")
		}
		need = n
	}
	rep, err := s.Registry.Readiness(c.UserContext(), id, need)
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

// readinessPage lists the coverage gaps.
//
//go:embed pages/readiness.html
var readinessPage []byte

// tokenPage serves a page that holds no data itself: its inline script
// reads the JSON with the dispatcher's token. The coverage-gap page and
// the drill report are such pages.
func tokenPage(body []byte) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'")
		return c.Send(body)
	}
}
