package responders

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// IndexKeeper keeps a replica's match Index close to the database: it
// loads the registry at start, applies this replica's own writes as soon as
// they commit, tells the other replicas over core NATS, refreshes what they
// announce, and reconciles by updated_at now and then to repair a lost
// announcement or a write made outside the service.
type IndexKeeper struct {
	Index *Index
	DB    storage.DB
	// Conn carries announcements between replicas; nil keeps them local.
	Conn *nats.Conn
	Log  *slog.Logger
	Now  func() time.Time
	// Every is the reconciliation period; zero means a minute.
	Every time.Duration
	// Origin names this replica in announcements, so it skips its own.
	Origin string
}

// registryChange is what a replica announces after a committed write to
// responders. No ids means the whole community (a roster import).
type registryChange struct {
	Origin    string   `json:"origin"`
	Community string   `json:"community"`
	IDs       []string `json:"ids,omitempty"`
}

// reconcileOverlap is how far back each reconciliation looks past the
// previous one: updated_at is stamped by the writer's clock before its
// transaction commits, so a row may appear with a slightly older stamp.
const reconcileOverlap = 2 * time.Minute

// maxRefreshIDs is the most responders refreshed one by one; more reload
// the community.
const maxRefreshIDs = 200

// Run loads the index, follows announcements and reconciles until ctx ends.
// Matching uses SQL until the first load has finished.
func (k *IndexKeeper) Run(ctx context.Context) {
	every := k.Every
	if every <= 0 {
		every = time.Minute
	}
	if k.Conn != nil {
		sub, err := k.Conn.Subscribe(events.RegistryChangedWildcard, func(m *nats.Msg) {
			var c registryChange
			if err := json.Unmarshal(m.Data, &c); err != nil || c.Origin == k.Origin {
				return
			}
			if err := k.refresh(ctx, c.Community, c.IDs); err != nil && ctx.Err() == nil {
				k.Log.Warn("match index: refresh after another replica's change failed; the next reconciliation repairs it",
					"community", c.Community, "err", err)
			}
		})
		if err != nil {
			k.Log.Error("match index: cannot follow registry changes; relying on reconciliation", "err", err)
		} else {
			defer sub.Unsubscribe()
		}
	}
	var since time.Time
	for {
		started := k.Now()
		var err error
		if !k.Index.Loaded() {
			// Writes that commit during the load may be missed by it;
			// a reconciliation right after picks them up.
			if err = k.Load(ctx); err == nil {
				err = k.Reconcile(ctx, started.Add(-reconcileOverlap))
			}
		} else {
			err = k.Reconcile(ctx, since)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			k.Log.Warn("match index: reload failed; matching keeps the SQL path meanwhile", "err", err)
		default:
			since = started.Add(-reconcileOverlap)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// Load reads every available responder into the index.
func (k *IndexKeeper) Load(ctx context.Context) error {
	began := time.Now()
	rs, err := queryResponders(ctx, k.DB, `SELECT `+responderColumns+` FROM responders WHERE available = true`)
	if err != nil {
		return fmt.Errorf("load match index: %w", err)
	}
	k.Index.replaceAll(rs)
	k.Log.Info("match index loaded", "responders", len(rs), "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// Reconcile re-reads the responders changed since a time.
func (k *IndexKeeper) Reconcile(ctx context.Context, since time.Time) error {
	rs, err := queryResponders(ctx, k.DB, `SELECT `+responderColumns+` FROM responders WHERE updated_at >= $1`, since.UnixMilli())
	if err != nil {
		return fmt.Errorf("reconcile match index: %w", err)
	}
	k.Index.Apply(rs, nil)
	return nil
}

// Changed is called after a write to a community's responders has
// committed: ids were written, or the whole community when ids is empty.
// It refreshes this replica's index from the database and tells the
// others. A failure is only logged: the write itself has succeeded, and
// matching double-checks the database anyway.
func (k *IndexKeeper) Changed(ctx context.Context, community string, ids ...string) {
	if k == nil {
		return
	}
	if err := k.refresh(ctx, community, ids); err != nil {
		k.Log.Warn("match index: refresh after a registry change failed; the next reconciliation repairs it",
			"community", community, "err", err)
	}
	if k.Conn == nil {
		return
	}
	if len(ids) > maxRefreshIDs {
		ids = nil
	}
	b, _ := json.Marshal(registryChange{Origin: k.Origin, Community: community, IDs: ids})
	if err := k.Conn.Publish(events.RegistryChangedSubject(community), b); err != nil {
		k.Log.Warn("match index: cannot announce a registry change; other replicas catch up at reconciliation",
			"community", community, "err", err)
	}
}

// refresh re-reads some responders of a community, or all of it.
func (k *IndexKeeper) refresh(ctx context.Context, community string, ids []string) error {
	if !k.Index.Loaded() {
		return nil // the load in progress reads them, and reconciliation follows it
	}
	if len(ids) == 0 || len(ids) > maxRefreshIDs {
		rs, err := queryResponders(ctx, k.DB, `SELECT `+responderColumns+` FROM responders WHERE community_id = $1 AND available = true`,
			community)
		if err != nil {
			return fmt.Errorf("refresh match index of %s: %w", community, err)
		}
		k.Index.replaceCommunity(community, rs)
		return nil
	}
	rs, err := respondersByID(ctx, k.DB, ids, "")
	if err != nil {
		return fmt.Errorf("refresh match index of %s: %w", community, err)
	}
	found := map[string]bool{}
	for _, r := range rs {
		found[r.ID] = true
	}
	var gone []string
	for _, id := range ids {
		if !found[id] {
			gone = append(gone, id)
		}
	}
	k.Index.Apply(rs, gone)
	return nil
}

// respondersByID reads responders by id; extra is appended to the WHERE
// clause (e.g. to keep only the idle ones).
func respondersByID(ctx context.Context, q storage.Querier, ids []string, extra string) ([]Responder, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return queryResponders(ctx, q, `SELECT `+responderColumns+` FROM responders WHERE id IN (`+storage.Marks(1, len(ids))+`)`+extra,
		storage.Args(ids)...)
}
