package api

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/audit"
	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/storage"
)

// The audit log (package audit): every handler that changes something
// records who did it. Where the change is plain database writes it runs in
// audited, so the change and its entry commit together; a refused change
// records nothing. Changes that publish to the bus as they commit (drills,
// budgets, training) are recorded right after they succeed, by recordAfter.

// actorOf names the caller in the audit log: "user:<username>" for staff
// signed in with a password (their subject is their username), otherwise
// the principal, "role:community:subject".
func actorOf(c *fiber.Ctx, p Principal) string {
	if c.Locals(sessionKey) != nil && (p.Role == RoleAdmin || p.Role == RoleDispatcher) && p.Subject != "" {
		return "user:" + p.Subject
	}
	return p.String()
}

// audited runs change in one transaction with the entry it returns. change
// must do all its work through db (the transaction); an entry with no
// Action records nothing (the change turned out to change nothing).
func (s *server) audited(ctx context.Context, change func(db storage.DB) (audit.Entry, error)) error {
	return s.DB.InTx(ctx, func(q storage.Querier) error {
		e, err := change(storage.Within(q, s.DB.Dialect()))
		if err != nil || e.Action == "" {
			return err
		}
		if e.At.IsZero() {
			e.At = s.Now()
		}
		return audit.Record(ctx, q, e)
	})
}

// recordAfter records a change that has committed already. A failure is
// logged, not returned: the change stands, and the caller must hear so.
func (s *server) recordAfter(ctx context.Context, e audit.Entry) {
	e.At = s.Now()
	if err := audit.Record(ctx, s.DB, e); err != nil {
		s.Log.Error("audit entry lost after a committed change", "action", e.Action, "object", e.ObjectID, "actor", e.Actor, "err", err)
	}
}

// registryIn is the registry working inside an audited transaction. The
// match index keeper is left out: it must learn of a change only once it
// has committed, so callers tell s.Registry.Keeper afterwards.
func (s *server) registryIn(db storage.DB) *responders.Registry {
	r := *s.Registry
	r.DB, r.Keeper = db, nil
	return &r
}

// listAudit answers GET /v1/audit: admins read every entry, a dispatcher
// their own community's. Oldest first; next_after continues the list.
func (s *server) listAudit(c *fiber.Ctx) error {
	p, err := need(c, RoleAdmin, RoleDispatcher)
	if err != nil {
		return err
	}
	f := audit.Filter{Community: c.Query("community"), ObjectKind: c.Query("object_kind"), ObjectID: c.Query("object_id"),
		Action: c.Query("action")}
	if p.Role != RoleAdmin {
		if f.Community != "" && f.Community != p.Community {
			return fmt.Errorf("community %s: %w", f.Community, errdefs.ErrNotFound)
		}
		f.Community = p.Community
	}
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fieldError(fiber.StatusBadRequest, "since", "an RFC 3339 time, e.g. 2026-11-30T08:00:00Z")
		}
		f.Since = t
	}
	if v := c.Query("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fieldError(fiber.StatusBadRequest, "after", "the id of the last entry read (next_after)")
		}
		f.After = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxLimit {
			return fieldError(fiber.StatusBadRequest, "limit", fmt.Sprintf("a number from 1 to %d", audit.MaxLimit))
		}
		f.Limit = n
	}
	entries, more, err := audit.List(c.UserContext(), s.DB, f)
	if err != nil {
		return err
	}
	out := fiber.Map{"entries": entries}
	if more {
		out["next_after"] = entries[len(entries)-1].ID
	}
	return c.JSON(out)
}

// changedFields lists the fields a patch sets: its JSON keys that are not
// null, sorted. Values stay out of the log; the object holds them.
func changedFields(patch any) []string {
	b, err := json.Marshal(patch)
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	out := []string{}
	for k, v := range m {
		if string(v) != "null" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
