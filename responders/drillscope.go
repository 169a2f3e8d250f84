package responders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/storage"
)

// Scope is who takes part in a drill. Nobody outside it is contacted: a
// drill must never page a bomb-disposal professional who was not told.
type Scope struct {
	// Teams are organisations (volunteer teams…) whose members may be offered.
	Teams []string `json:"teams,omitempty"`
	// Organisations are the organisations, by id or kind, that plan duties
	// may go to. The emergency center always takes part: it runs the drill.
	Organisations []string `json:"organisations,omitempty"`
	// Responders are single responders taking part, by id.
	Responders []string `json:"responders,omitempty"`
}

// Empty reports whether the scope names nobody.
func (s Scope) Empty() bool { return len(s.Teams)+len(s.Organisations)+len(s.Responders) == 0 }

// Includes reports whether a responder takes part. A nil scope (not a
// drill) includes everyone.
func (s *Scope) Includes(r Responder) bool {
	if s == nil {
		return true
	}
	return (r.Team != "" && contains(s.Teams, r.Team)) || contains(s.Responders, r.ID)
}

// IncludesOrg reports whether an organisation takes part.
func (s *Scope) IncludesOrg(o Organisation) bool {
	if s == nil || o.Kind == OrgEmergencyCenter {
		return true
	}
	return contains(s.Organisations, o.ID) || contains(s.Organisations, o.Kind) || contains(s.Teams, o.ID)
}

// Filter keeps the responders in scope.
func (s *Scope) Filter(rs []Responder) []Responder {
	if s == nil {
		return rs
	}
	var out []Responder
	for _, r := range rs {
		if s.Includes(r) {
			out = append(out, r)
		}
	}
	return out
}

// Check validates a scope against a community's organisations and responders.
func (s Scope) Check(ctx context.Context, q storage.Querier, community string) error {
	verr := &errdefs.ValidationError{}
	if s.Empty() {
		verr.Add("scope", "name at least one team, organisation or responder: a drill never contacts anyone outside its scope")
	}
	orgs, err := listOrgs(ctx, q, community, "")
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, o := range orgs {
		known[o.ID] = true
	}
	for _, t := range s.Teams {
		if !known[t] {
			verr.Add("scope.teams", "no organisation "+t+" in community "+community)
		}
	}
	for _, o := range s.Organisations {
		if !known[o] && !contains(orgKinds, o) {
			verr.Add("scope.organisations", o+" is neither an organisation of the community nor a kind")
		}
	}
	for _, id := range s.Responders {
		var n int
		if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM responders WHERE id = $1 AND community_id = $2`, id, community).Scan(&n); err != nil {
			return fmt.Errorf("check scope responder %s: %w", id, err)
		}
		if n == 0 {
			verr.Add("scope.responders", "no responder "+id+" in community "+community)
		}
	}
	return verr.OrNil()
}

// ScopeOf is the scope of the drill an incident belongs to. A drill
// incident with no drill record gets an empty scope: contacting nobody is
// the safe mistake.
func ScopeOf(ctx context.Context, q storage.Querier, incident string) (*Scope, error) {
	var doc string
	err := q.QueryRow(ctx, `SELECT doc FROM drills WHERE incident_id = $1`, incident).Scan(&doc)
	if errors.Is(err, storage.ErrNoRows) {
		return &Scope{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scope of drill %s: %w", incident, err)
	}
	var d struct {
		Scope Scope `json:"scope"`
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("scope of drill %s: %w", incident, err)
	}
	return &d.Scope, nil
}

// OrgOfKindAmong is OrgOfKind for a drill, among a community's
// organisations read before (Orgs): the first organisation of the kind
// that is in scope. ok is false when there is none of the kind at all;
// inScope is false when there are some but none takes part.
func OrgOfKindAmong(orgs []Organisation, kind string, scope *Scope) (o Organisation, ok, inScope bool) {
	var first *Organisation
	for i := range orgs {
		if orgs[i].Kind != kind {
			continue
		}
		if first == nil {
			first = &orgs[i]
		}
		if scope.IncludesOrg(orgs[i]) {
			return orgs[i], true, true
		}
	}
	if first == nil {
		return Organisation{}, false, false
	}
	return *first, true, false
}

// Orgs lists a community's organisations, the first registered first, as
// OrgOfKind takes them.
func Orgs(ctx context.Context, q storage.Querier, community string) ([]Organisation, error) {
	return listOrgs(ctx, q, community, "")
}
