package incidents

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shouwang/shouwang/storage"
)

// RecentFilter picks what a public list of incidents shows.
type RecentFilter struct {
	Types       []string  // only these types; none lists nothing
	Community   string    // empty: every community
	ClosedSince time.Time // closed incidents only if closed at or after this
	Limit       int       // at most this many, newest first (default and cap 500)
}

// Recent lists the incidents still active and those closed since
// f.ClosedSince, newest first. Drills are left out: this list is what the
// public sees.
func Recent(ctx context.Context, q storage.Querier, f RecentFilter) ([]Incident, error) {
	if len(f.Types) == 0 {
		return []Incident{}, nil
	}
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	types := make([]string, len(f.Types))
	for i, t := range f.Types {
		types[i] = arg(t)
	}
	sql := `SELECT ` + incidentColumns + ` FROM incidents WHERE drill = false AND type IN (` + strings.Join(types, ", ") + `)
		AND (status IN ('open', 'responding', 'escalated') OR closed_at >= ` + arg(f.ClosedSince.UnixMilli()) + `)`
	if f.Community != "" {
		sql += ` AND community_id = ` + arg(f.Community)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 500
	}
	sql += ` ORDER BY opened_at DESC LIMIT ` + arg(f.Limit)
	out, err := queryIncidents(ctx, q, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("recent incidents: %w", err)
	}
	return out, nil
}
