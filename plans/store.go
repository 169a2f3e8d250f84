package plans

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// Store keeps every version of every plan.
type Store struct {
	DB  storage.DB
	Tax *events.Taxonomy
	Now func() time.Time

	// Parsed, when set, keeps the plans Latest has parsed; nil parses every
	// time.
	Parsed *ParseCache
}

// ParseCache keeps parsed plan versions. A version is never changed once
// saved, so a cached one is always right; Latest still asks the database
// which versions are the newest, so a plan saved on another replica counts
// at once. Parsing every plan for every incident was 6 % of the CPU at 500
// alarms/s (issue 8). Share one between the copies of a Store.
type ParseCache struct {
	mu     sync.Mutex
	parsed map[planVersion]parsedPlan
}

// NewParseCache returns an empty cache.
func NewParseCache() *ParseCache { return &ParseCache{parsed: make(map[planVersion]parsedPlan)} }

type planVersion struct {
	id      string
	version int
}

// parsedPlan is a cached parse: the plan, or ok false for a stored
// document the taxonomy no longer accepts.
type parsedPlan struct {
	plan Plan
	ok   bool
}

// Save stores p as the next version of its id and returns it with its
// version. Runs already under way keep the steps they copied.
func (s *Store) Save(ctx context.Context, p Plan, by string) (Plan, error) {
	types, _ := json.Marshal(p.Types)
	title, _ := json.Marshal(p.Title)
	err := s.DB.InTx(ctx, func(q storage.Querier) error {
		if err := q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM plans WHERE id = $1`, p.ID).Scan(&p.Version); err != nil {
			return err
		}
		_, err := q.Exec(ctx, `INSERT INTO plans (id, version, community_id, types, sev_from, sev_to, title, doc, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, p.ID, p.Version, p.Community, string(types), p.SevFrom, p.SevTo,
			string(title), p.Doc, by, s.Now().UnixMilli())
		return err
	})
	if storage.IsUniqueViolation(err) {
		return Plan{}, fmt.Errorf("plan %s was saved by someone else at the same moment; send it again: %w", p.ID, errdefs.ErrConflict)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("save plan %s: %w", p.ID, err)
	}
	return p, nil
}

// Latest returns the newest version of every plan, by id. Only versions
// it has not parsed before are read in full.
func (s *Store) Latest(ctx context.Context, q storage.Querier) ([]Plan, error) {
	rows, err := q.Query(ctx, `SELECT id, MAX(version) FROM plans GROUP BY id ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("latest plans: %w", err)
	}
	var latest []planVersion
	for rows.Next() {
		var v planVersion
		if err := rows.Scan(&v.id, &v.version); err != nil {
			rows.Close()
			return nil, fmt.Errorf("latest plans: %w", err)
		}
		latest = append(latest, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest plans: %w", err)
	}
	out := make([]Plan, 0, len(latest))
	for _, v := range latest {
		pp, ok := s.Parsed.get(v)
		if !ok {
			var doc string
			if err := q.QueryRow(ctx, `SELECT doc FROM plans WHERE id = $1 AND version = $2`, v.id, v.version).Scan(&doc); err != nil {
				return nil, fmt.Errorf("read plan %s version %d: %w", v.id, v.version, err)
			}
			p, err := Parse(s.Tax, []byte(doc))
			// Stored documents passed lint; a taxonomy change can still
			// orphan one. Skip it rather than stop every plan.
			pp = parsedPlan{plan: p, ok: err == nil}
			pp.plan.Version = v.version
			s.Parsed.put(v, pp)
		}
		if pp.ok {
			out = append(out, pp.plan)
		}
	}
	return out, nil
}

func (c *ParseCache) get(v planVersion) (parsedPlan, bool) {
	if c == nil {
		return parsedPlan{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pp, ok := c.parsed[v]
	return pp, ok
}

// put caches a parsed version and drops the older versions of the same
// plan, which Latest will not ask for again.
func (c *ParseCache) put(v planVersion, pp parsedPlan) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.parsed {
		if k.id == v.id && k.version < v.version {
			delete(c.parsed, k)
		}
	}
	c.parsed[v] = pp
}

// Get returns the newest version of a plan.
func (s *Store) Get(ctx context.Context, id string) (Plan, error) {
	var doc string
	var version int
	err := s.DB.QueryRow(ctx, `SELECT doc, version FROM plans WHERE id = $1 ORDER BY version DESC LIMIT 1`, id).Scan(&doc, &version)
	if errors.Is(err, storage.ErrNoRows) {
		return Plan{}, fmt.Errorf("plan %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("read plan %s: %w", id, err)
	}
	p, err := Parse(s.Tax, []byte(doc))
	if err != nil {
		return Plan{}, fmt.Errorf("stored plan %s no longer parses: %w", id, err)
	}
	p.Version = version
	return p, nil
}

// Pick chooses the plan for an incident: the most specific that applies.
// A plan scoped to the community beats a global one; a narrower severity
// range beats a wider one; then the lower id, so the choice is stable.
func Pick(plans []Plan, community, typ string, sev events.Severity) (Plan, bool) {
	var fit []Plan
	for _, p := range plans {
		if p.Applies(community, typ, sev) {
			fit = append(fit, p)
		}
	}
	if len(fit) == 0 {
		return Plan{}, false
	}
	sort.Slice(fit, func(i, j int) bool {
		a, b := fit[i], fit[j]
		if (a.Community != "") != (b.Community != "") {
			return a.Community != ""
		}
		if wa, wb := a.SevFrom-a.SevTo, b.SevFrom-b.SevTo; wa != wb {
			return wa < wb
		}
		return a.ID < b.ID
	})
	return fit[0], true
}

//go:embed seed/*.yaml
var seeds embed.FS

// Seed stores the plans shipped with Shouwang, once: a plan id already in
// the database (seeded before, or replaced by the community) is left alone.
func (s *Store) Seed(ctx context.Context) error {
	files, err := fs.Glob(seeds, "seed/*.yaml")
	if err != nil {
		return err
	}
	for _, f := range files {
		src, err := seeds.ReadFile(f)
		if err != nil {
			return err
		}
		p, err := Parse(s.Tax, src)
		if err != nil {
			return fmt.Errorf("seed plan %s: %w", f, err)
		}
		var n int
		if err := s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM plans WHERE id = $1`, p.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		// Replicas starting together all seed; losing that race is fine.
		if _, err := s.Save(ctx, p, "seed"); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
	}
	return nil
}
