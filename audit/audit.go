// Package audit is the append-only record of who changed what: plans,
// responders, tokens, users, incident status, drills and the registry. An
// entry is written in the same transaction as the change where the change
// has one, so a refused or rolled-back change leaves no entry. The database
// refuses to update or delete entries (see migration 00009); nothing here
// offers to.
//
// Entries never carry a secret: no token value, no password, and phone
// numbers only masked (callers mask them, as the logs do).
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/shouwang/shouwang/storage"
)

// Actors that are not a signed-in principal.
const (
	// System is the pipeline acting on its own (timers, drill limits).
	System = "system"
	// CLIPrefix starts the actor of a command run on the server: "cli:<os user>".
	CLIPrefix = "cli:"
)

// Entry is one change.
type Entry struct {
	ID int64 `json:"id"`
	// At is when the change was made (millisecond precision).
	At time.Time `json:"at"`
	// Actor is who made it: a principal "role:community:subject",
	// "cli:<os user>" or "system".
	Actor string `json:"actor"`
	// Community the changed object belongs to; empty for global objects
	// (plans without a community, admin tokens).
	Community string `json:"community,omitempty"`
	// Action is "<object kind>.<verb>", e.g. responder.update.
	Action     string `json:"action"`
	ObjectKind string `json:"object_kind"`
	ObjectID   string `json:"object_id"`
	// Detail says what changed: the fields of a patch, a status, a count.
	Detail map[string]any `json:"detail,omitempty"`
}

// Record appends e. Pass the transaction that makes the change, so both
// commit or neither does. A zero At is stamped now.
func Record(ctx context.Context, q storage.Querier, e Entry) error {
	if e.Actor == "" || e.Action == "" || e.ObjectKind == "" {
		return fmt.Errorf("audit entry needs actor, action and object kind: %+v", e)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	detail := "{}"
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("audit %s %s: detail: %w", e.Action, e.ObjectID, err)
		}
		detail = string(b)
	}
	_, err := q.Exec(ctx, `INSERT INTO audit_log (at, actor, community_id, action, object_kind, object_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.At.UnixMilli(), e.Actor, e.Community, e.Action, e.ObjectKind, e.ObjectID, detail)
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", e.Action, e.ObjectID, err)
	}
	return nil
}

// Filter selects entries; zero fields select all.
type Filter struct {
	Community  string
	ObjectKind string
	ObjectID   string
	Action     string
	Since      time.Time
	// After is the id of the last entry of the previous page.
	After int64
	// Limit is at most MaxLimit; zero means DefaultLimit.
	Limit int
}

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 500
)

// List returns the entries f selects, oldest first, and whether more
// follow the last one.
func List(ctx context.Context, q storage.Querier, f Filter) ([]Entry, bool, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Community != "" {
		add("community_id = $%d", f.Community)
	}
	if f.ObjectKind != "" {
		add("object_kind = $%d", f.ObjectKind)
	}
	if f.ObjectID != "" {
		add("object_id = $%d", f.ObjectID)
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if !f.Since.IsZero() {
		add("at >= $%d", f.Since.UnixMilli())
	}
	if f.After > 0 {
		add("id > $%d", f.After)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	sql := `SELECT id, at, actor, community_id, action, object_kind, object_id, detail FROM audit_log`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	// One more than asked says whether another page follows.
	sql += fmt.Sprintf(" ORDER BY id LIMIT %d", limit+1)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list audit log: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var at int64
		var detail string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Community, &e.Action, &e.ObjectKind, &e.ObjectID, &detail); err != nil {
			return nil, false, fmt.Errorf("list audit log: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		if detail != "{}" {
			if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
				return nil, false, fmt.Errorf("audit entry %d: detail: %w", e.ID, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list audit log: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
