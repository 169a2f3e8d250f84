package api

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/accounts"
	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/storage"
)

type userRequest struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	Role      string `json:"role"`
	Community string `json:"community"`
	Subject   string `json:"subject"`
	Name      string `json:"name"`
}

// createUser adds a staff member who signs in with a password: admins
// create anyone; a dispatcher creates the org users of their own
// community (the property company's or the owners' committee's login).
// The answer never holds the password or its hash.
func (s *server) createUser(c *fiber.Ctx) error {
	p, err := need(c, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	var req userRequest
	if err := decodeJSON(c, &req, true); err != nil {
		return err
	}
	if p.Role == RoleDispatcher && (req.Role != RoleOrg || req.Community != p.Community) {
		return fmt.Errorf("a dispatcher creates only org users of their own community: %w", errdefs.ErrForbidden)
	}
	var u accounts.User
	err = s.audited(c.UserContext(), func(db storage.DB) (e audit.Entry, err error) {
		acc := *s.Accounts
		acc.DB = db
		u, err = acc.CreateUser(c.UserContext(), accounts.NewUser{Username: req.Username, Password: req.Password,
			Role: req.Role, Community: req.Community, Subject: req.Subject, Name: req.Name}, p.String())
		return audit.Entry{Actor: actorOf(c, p), Community: u.Community, Action: "user.create", ObjectKind: "user",
			ObjectID: u.Username, Detail: map[string]any{"role": u.Role, "subject": u.Subject}}, err
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(u)
}
