package api

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

func (s *server) createCommunity(c *fiber.Ctx) error {
	p, err := need(c, RoleAdmin)
	if err != nil {
		return err
	}
	var in responders.Community
	if err := decodeJSON(c, &in, true); err != nil {
		return err
	}
	var out responders.Community
	err = s.audited(c.UserContext(), func(db storage.DB) (e audit.Entry, err error) {
		out, err = s.registryIn(db).CreateCommunity(c.UserContext(), in)
		return audit.Entry{Actor: actorOf(c, p), Community: out.ID, Action: "community.create", ObjectKind: "community",
			ObjectID: out.ID, Detail: map[string]any{"name": out.Name}}, err
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) listCommunities(c *fiber.Ctx) error {
	p, err := need(c, RoleAdmin, RoleDispatcher, RoleOrg, RoleResponder, RoleResident)
	if err != nil {
		return err
	}
	if p.Role != RoleAdmin {
		one, err := s.Registry.GetCommunity(c.UserContext(), p.Community)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"communities": []responders.Community{one}})
	}
	all, err := s.Registry.ListCommunities(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"communities": all})
}

func (s *server) getCommunity(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher, RoleOrg, RoleResponder, RoleResident); err != nil {
		return err
	}
	out, err := s.Registry.GetCommunity(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *server) patchCommunity(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	var patch responders.CommunityPatch
	if err := decodeJSON(c, &patch, true); err != nil {
		return err
	}
	var out responders.Community
	err = s.audited(c.UserContext(), func(db storage.DB) (e audit.Entry, err error) {
		out, err = s.registryIn(db).UpdateCommunity(c.UserContext(), id, patch)
		return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "community.update", ObjectKind: "community",
			ObjectID: id, Detail: map[string]any{"fields": changedFields(patch)}}, err
	})
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *server) createOrganisation(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	var in responders.Organisation
	if err := decodeJSON(c, &in, true); err != nil {
		return err
	}
	if in.Community != "" && in.Community != id {
		return errdefs.Invalid("community", "must match the community in the path")
	}
	in.Community = id
	var out responders.Organisation
	err = s.audited(c.UserContext(), func(db storage.DB) (e audit.Entry, err error) {
		out, err = s.registryIn(db).CreateOrganisation(c.UserContext(), in)
		return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "organisation.create", ObjectKind: "organisation",
			ObjectID: out.ID, Detail: map[string]any{"kind": out.Kind, "name": out.Name}}, err
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) listOrganisations(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher, RoleOrg); err != nil {
		return err
	}
	out, err := s.Registry.ListOrganisations(c.UserContext(), id, c.Query("kind"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"organisations": out})
}

func (s *server) getOrganisation(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher, RoleOrg); err != nil {
		return err
	}
	out, err := s.Registry.GetOrganisation(c.UserContext(), id, c.Params("org"))
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *server) patchOrganisation(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	var patch responders.OrganisationPatch
	if err := decodeJSON(c, &patch, true); err != nil {
		return err
	}
	org := c.Params("org")
	var out responders.Organisation
	err = s.audited(c.UserContext(), func(db storage.DB) (e audit.Entry, err error) {
		out, err = s.registryIn(db).UpdateOrganisation(c.UserContext(), id, org, patch)
		return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "organisation.update", ObjectKind: "organisation",
			ObjectID: org, Detail: map[string]any{"fields": changedFields(patch)}}, err
	})
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *server) createResponder(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	in := responders.Responder{Available: true}
	if err := decodeJSON(c, &in, true); err != nil {
		return err
	}
	if in.Community != "" && in.Community != id {
		return errdefs.Invalid("community", "must match the community in the path")
	}
	in.Community = id
	ctx := c.UserContext()
	var out responders.Responder
	err = s.audited(ctx, func(db storage.DB) (e audit.Entry, err error) {
		out, err = s.registryIn(db).CreateResponder(ctx, in)
		return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "responder.create", ObjectKind: "responder",
			ObjectID: out.ID, Detail: map[string]any{"phone": sms.Mask(out.Phone), "skills": out.Skills, "team": out.Team}}, err
	})
	if err != nil {
		return err
	}
	s.Registry.Keeper.Changed(ctx, id, out.ID)
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) listResponders(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher); err != nil {
		return err
	}
	limit, offset := page(c)
	out, err := s.Registry.ListResponders(c.UserContext(), id, limit, offset)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"responders": out})
}

// selfOrManager lets a responder act on their own record, and dispatchers
// and admins on any in their community.
func selfOrManager(c *fiber.Ctx, community, responder string) (Principal, error) {
	p, err := needIn(c, community, RoleAdmin, RoleDispatcher, RoleResponder)
	if err != nil {
		return p, err
	}
	if p.Role == RoleResponder && p.Subject != responder {
		return p, fmt.Errorf("responder %s: %w", responder, errdefs.ErrNotFound)
	}
	return p, nil
}

func (s *server) getResponder(c *fiber.Ctx) error {
	id, rid := c.Params("id"), c.Params("rid")
	if _, err := selfOrManager(c, id, rid); err != nil {
		return err
	}
	out, err := s.Registry.GetResponder(c.UserContext(), id, rid)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *server) patchResponder(c *fiber.Ctx) error {
	id, rid := c.Params("id"), c.Params("rid")
	p, err := selfOrManager(c, id, rid)
	if err != nil {
		return err
	}
	var patch responders.ResponderPatch
	if err := decodeJSON(c, &patch, true); err != nil {
		return err
	}
	if p.Role == RoleResponder {
		// Responders say where they are and whether they can come; their
		// skills and certificates are vouched for by the center.
		if patch.Name != nil || patch.Phone != nil || patch.Skills != nil || patch.Certificates != nil ||
			patch.PartyMember != nil || patch.Kind != nil || patch.Team != nil {
			return fmt.Errorf("a responder may change only available, location and locale: %w", errdefs.ErrForbidden)
		}
	}
	ctx := c.UserContext()
	detail := map[string]any{"fields": changedFields(patch)}
	if patch.Phone != nil {
		detail["phone"] = sms.Mask(*patch.Phone)
	}
	var out responders.Responder
	err = s.audited(ctx, func(db storage.DB) (e audit.Entry, err error) {
		out, err = s.registryIn(db).UpdateResponder(ctx, id, rid, patch)
		return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "responder.update", ObjectKind: "responder",
			ObjectID: rid, Detail: detail}, err
	})
	if err != nil {
		return err
	}
	s.Registry.Keeper.Changed(ctx, id, rid)
	return c.JSON(out)
}

type tokenRequest struct {
	Role      string `json:"role"`
	Community string `json:"community"`
	Subject   string `json:"subject"`
}

// createToken issues a bearer token. Admins issue any; a dispatcher issues
// tokens for their own community, never admin ones.
func (s *server) createToken(c *fiber.Ctx) error {
	p, err := need(c, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	var req tokenRequest
	if err := decodeJSON(c, &req, true); err != nil {
		return err
	}
	verr := &errdefs.ValidationError{}
	switch req.Role {
	case RoleAdmin:
		if req.Community != "" {
			verr.Add("community", "admin tokens belong to no community")
		}
	case RoleResident, RoleResponder, RoleDispatcher, RoleOrg:
		if req.Community == "" {
			verr.Add("community", "required")
		}
		if req.Subject == "" && req.Role != RoleDispatcher {
			verr.Add("subject", "required: who the token is for (resident id, responder id, organisation id)")
		}
	default:
		verr.Add("role", "one of resident, responder, dispatcher, org, admin")
	}
	if len(req.Subject) > 128 {
		verr.Add("subject", "at most 128 characters")
	}
	if err := verr.OrNil(); err != nil {
		return err
	}
	if p.Role == RoleDispatcher && (req.Role == RoleAdmin || req.Community != p.Community) {
		return fmt.Errorf("a dispatcher issues tokens only for their own community: %w", errdefs.ErrForbidden)
	}
	ctx := c.UserContext()
	if req.Community != "" {
		if _, err := s.Registry.GetCommunity(ctx, req.Community); err != nil {
			return errdefs.Invalid("community", "no community "+req.Community)
		}
	}
	if err := s.checkSubject(c, req); err != nil {
		return err
	}
	var token string
	err = s.audited(ctx, func(db storage.DB) (e audit.Entry, err error) {
		inTx := &Tokens{DB: db, Now: s.tokens.Now}
		if token, err = inTx.Issue(ctx, Principal(req), p.String()); err != nil {
			return e, err
		}
		// The token's hash names it: enough to find its row, useless to sign in.
		return audit.Entry{Actor: actorOf(c, p), Community: req.Community, Action: "token.create", ObjectKind: "token",
			ObjectID: hex.EncodeToString(hashToken(token))[:16],
			Detail:   map[string]any{"role": req.Role, "community": req.Community, "subject": req.Subject}}, nil
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"token": token, "role": req.Role, "community": req.Community, "subject": req.Subject})
}

// checkSubject makes sure responder and org tokens name someone who exists.
func (s *server) checkSubject(c *fiber.Ctx, req tokenRequest) error {
	ctx := c.UserContext()
	switch req.Role {
	case RoleResponder:
		if _, err := s.Registry.GetResponder(ctx, req.Community, req.Subject); err != nil {
			return errdefs.Invalid("subject", "no responder "+req.Subject+" in "+req.Community)
		}
	case RoleOrg:
		if _, err := s.Registry.GetOrganisation(ctx, req.Community, req.Subject); err != nil {
			return errdefs.Invalid("subject", "no organisation "+req.Subject+" in "+req.Community)
		}
	}
	return nil
}

func (s *server) createResident(c *fiber.Ctx) error {
	id := c.Params("id")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	in, err := decodeResident(c, id)
	if err != nil {
		return err
	}
	var out responders.Resident
	err = s.audited(c.UserContext(), func(db storage.DB) (e audit.Entry, err error) {
		out, err = s.registryIn(db).CreateResident(c.UserContext(), in)
		return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "resident.create", ObjectKind: "resident",
			ObjectID: out.ID, Detail: map[string]any{"phone": sms.Mask(out.Phone)}}, err
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

// decodeResident reads a resident for the community in the path.
func decodeResident(c *fiber.Ctx, community string) (responders.Resident, error) {
	var in responders.Resident
	if err := decodeJSON(c, &in, true); err != nil {
		return in, err
	}
	if in.Community != "" && in.Community != community {
		return in, errdefs.Invalid("community", "must match the community in the path")
	}
	in.Community = community
	return in, nil
}

// page reads limit and offset query parameters.
func page(c *fiber.Ctx) (int, int) {
	limit, _ := strconv.Atoi(c.Query("limit", "200"))
	offset, _ := strconv.Atoi(c.Query("offset", "0"))
	return limit, offset
}

func (s *server) listResidents(c *fiber.Ctx) error {
	id := c.Params("id")
	if _, err := needIn(c, id, RoleAdmin, RoleDispatcher); err != nil {
		return err
	}
	limit, offset := page(c)
	out, err := s.Registry.ListResidents(c.UserContext(), id, false, limit, offset)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"residents": out})
}

// residentSelfOrManager lets a resident read their own record.
func residentSelfOrManager(c *fiber.Ctx, community, resident string) (Principal, error) {
	p, err := needIn(c, community, RoleAdmin, RoleDispatcher, RoleResident)
	if err != nil {
		return p, err
	}
	if p.Role == RoleResident && p.Subject != resident {
		return p, fmt.Errorf("resident %s: %w", resident, errdefs.ErrNotFound)
	}
	return p, nil
}

func (s *server) getResident(c *fiber.Ctx) error {
	id, rid := c.Params("id"), c.Params("rid")
	if _, err := residentSelfOrManager(c, id, rid); err != nil {
		return err
	}
	out, err := s.Registry.GetResident(c.UserContext(), id, rid)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *server) patchResident(c *fiber.Ctx) error {
	id, rid := c.Params("id"), c.Params("rid")
	p, err := needIn(c, id, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	var patch responders.ResidentPatch
	if err := decodeJSON(c, &patch, true); err != nil {
		return err
	}
	var out responders.Resident
	err = s.audited(c.UserContext(), func(db storage.DB) (e audit.Entry, err error) {
		out, err = s.registryIn(db).UpdateResident(c.UserContext(), id, rid, patch)
		return audit.Entry{Actor: actorOf(c, p), Community: id, Action: "resident.update", ObjectKind: "resident",
			ObjectID: rid, Detail: map[string]any{"fields": changedFields(patch)}}, err
	})
	if err != nil {
		return err
	}
	return c.JSON(out)
}
