package responders

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// Validate checks a grid before it is stored.
func (g Grid) Validate() error {
	verr := &errdefs.ValidationError{}
	if g.ID != "" && !slug.MatchString(g.ID) {
		verr.Add("id", "2–63 characters of a–z, 0–9, _ and -")
	}
	checkName(verr, "name", g.Name, true)
	checkPoint(verr, "location", g.Location)
	return verr.OrNil()
}

// SaveGrid creates a grid or, when one with the id exists, moves and
// renames it: grids are redrawn now and then, and readiness follows.
func (r *Registry) SaveGrid(ctx context.Context, g Grid) (Grid, error) {
	if _, err := r.GetCommunity(ctx, g.Community); err != nil {
		return Grid{}, err
	}
	if err := g.Validate(); err != nil {
		return Grid{}, err
	}
	now := r.Now()
	if g.ID == "" {
		g.ID = strings.ToLower(events.NewID("g", now))
	}
	var created int64
	err := r.DB.QueryRow(ctx, `INSERT INTO grids (id, community_id, name, lat, lng, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (community_id, id) DO UPDATE SET name = excluded.name, lat = excluded.lat, lng = excluded.lng,
			updated_at = excluded.updated_at
		RETURNING created_at`, g.ID, g.Community, g.Name, g.Location.Lat, g.Location.Lng, now.UnixMilli()).Scan(&created)
	if err != nil {
		return Grid{}, fmt.Errorf("save grid %s: %w", g.ID, err)
	}
	g.CreatedAt = time.UnixMilli(created).UTC()
	return g, nil
}

// ListGrids lists a community's grids by name.
func (r *Registry) ListGrids(ctx context.Context, community string) ([]Grid, error) {
	rows, err := r.DB.Query(ctx, `SELECT id, community_id, name, lat, lng, created_at FROM grids
		WHERE community_id = $1 ORDER BY name, id`, community)
	if err != nil {
		return nil, fmt.Errorf("list grids of %s: %w", community, err)
	}
	defer rows.Close()
	out := []Grid{}
	for rows.Next() {
		var g Grid
		var at int64
		if err := rows.Scan(&g.ID, &g.Community, &g.Name, &g.Location.Lat, &g.Location.Lng, &at); err != nil {
			return nil, fmt.Errorf("read grid: %w", err)
		}
		g.CreatedAt = time.UnixMilli(at).UTC()
		out = append(out, g)
	}
	return out, rows.Err()
}

// DeleteGrid removes a grid.
func (r *Registry) DeleteGrid(ctx context.Context, community, id string) error {
	n, err := r.DB.Exec(ctx, `DELETE FROM grids WHERE community_id = $1 AND id = $2`, community, id)
	if err != nil {
		return fmt.Errorf("delete grid %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("grid %s: %w", id, errdefs.ErrNotFound)
	}
	return nil
}

// AllResponders reads every responder of a community, for reports.
func AllResponders(ctx context.Context, q storage.Querier, community string) ([]Responder, error) {
	return queryResponders(ctx, q, `SELECT `+responderColumns+` FROM responders WHERE community_id = $1 ORDER BY id`, community)
}

// Readiness reports a community's coverage now; need is how many
// responders a grid should have in reach (at least 1).
func (r *Registry) Readiness(ctx context.Context, community string, need int) (Readiness, error) {
	c, err := r.GetCommunity(ctx, community)
	if err != nil {
		return Readiness{}, err
	}
	grids, err := r.ListGrids(ctx, community)
	if err != nil {
		return Readiness{}, err
	}
	rs, err := AllResponders(ctx, r.DB, community)
	if err != nil {
		return Readiness{}, err
	}
	return ComputeReadiness(r.Tax, c, grids, rs, need, r.Now()), nil
}
