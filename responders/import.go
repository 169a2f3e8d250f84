package responders

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/storage"
)

// ImportOptions say how a roster is applied.
type ImportOptions struct {
	// DryRun reads and checks the roster and says what would change,
	// writing nothing.
	DryRun bool
	// SkipBad imports the good rows of a roster that has bad ones. Without
	// it, one bad row means nothing is imported.
	SkipBad bool
	// Progress, if set, is called as rows are written.
	Progress func(done, total int)
}

// ImportReport says what an import did. For a dry run, or an import
// refused because of bad rows, the counts say what it would have done and
// Imported is false.
type ImportReport struct {
	Community string `json:"community"`
	DryRun    bool   `json:"dry_run"`
	// Imported is true when the changes were committed.
	Imported  bool            `json:"imported"`
	Rows      int             `json:"rows"`
	Created   int             `json:"created"`
	Updated   int             `json:"updated"`
	Unchanged int             `json:"unchanged"`
	Failed    int             `json:"failed"`
	Errors    []RosterProblem `json:"errors"`
	Warnings  []RosterProblem `json:"warnings"`
}

// Refused reports whether errors kept an import that was asked to write
// from writing anything (a dry run is never refused).
func (rep ImportReport) Refused() bool {
	return !rep.DryRun && !rep.Imported && len(rep.Errors) > 0
}

// errHoldBack rolls back the import transaction when bad rows forbid it.
var errHoldBack = errors.New("import held back by bad rows")

// ImportRoster reads a roster's rows (see ReadRosterFile) into a
// community's registry in one transaction: a person already registered
// with the same phone number is updated in place (id, creation time,
// availability switch and current incident kept; only the columns the file
// has are changed); everyone else is created. Nothing is written when any
// row is bad, unless opt.SkipBad.
func (r *Registry) ImportRoster(ctx context.Context, community string, rows [][]string, opt ImportOptions) (ImportReport, error) {
	if _, err := r.GetCommunity(ctx, community); err != nil {
		return ImportReport{}, err
	}
	orgs, err := listOrgs(ctx, r.DB, community, "")
	if err != nil {
		return ImportReport{}, err
	}
	now := r.Now()
	roster := ParseRoster(r.Tax, rows, orgs, now)
	rep := ImportReport{Community: community, DryRun: opt.DryRun, Rows: roster.Rows, Failed: roster.Failed,
		Errors: roster.Errors, Warnings: roster.Warnings}
	if rep.Errors == nil {
		rep.Errors = []RosterProblem{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []RosterProblem{}
	}
	if opt.DryRun {
		_, err := r.planImport(ctx, r.DB, community, roster, &rep)
		return rep, err
	}
	err = r.DB.InTx(ctx, func(q storage.Querier) error {
		plan, err := r.planImport(ctx, q, community, roster, &rep)
		if err != nil {
			return err
		}
		if len(rep.Errors) > 0 && (!opt.SkipBad || rep.Created+rep.Updated+rep.Unchanged == 0) {
			return errHoldBack
		}
		for i, p := range plan {
			if p.create {
				p.responder.ID = events.NewID("rs", now)
				p.responder.CreatedAt, p.responder.UpdatedAt = now.UTC(), now.UTC()
				err = insertResponder(ctx, q, p.responder)
			} else {
				p.responder.UpdatedAt = now.UTC()
				err = updateFromRoster(ctx, q, p.responder)
			}
			if storage.IsUniqueViolation(err) {
				// Someone registered the same phone since the plan was read.
				return fmt.Errorf("row %d: phone registered meanwhile, import again: %w", p.row, errdefs.ErrConflict)
			}
			if err != nil {
				return fmt.Errorf("import row %d: %w", p.row, err)
			}
			if opt.Progress != nil {
				opt.Progress(i+1, len(plan))
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errHoldBack):
		return rep, nil
	case err != nil:
		return ImportReport{}, fmt.Errorf("import roster into %s: %w", community, err)
	}
	rep.Imported = true
	r.Keeper.Changed(ctx, community)
	return rep, nil
}

// importStep is a write the import will make: a new responder, or an
// update of a registered one.
type importStep struct {
	row       int
	create    bool
	responder Responder
}

// planImport decides, for every good row, whether it creates, updates or
// leaves alone a responder, and counts the outcomes in rep. Rows whose
// merged result breaks the registry's rules (an old value the taxonomy no
// longer knows, say) become errors.
func (r *Registry) planImport(ctx context.Context, q storage.Querier, community string, roster Roster, rep *ImportReport) ([]importStep, error) {
	existing, err := queryResponders(ctx, q, `SELECT `+responderColumns+` FROM responders WHERE community_id = $1`, community)
	if err != nil {
		return nil, err
	}
	byPhone := make(map[string]Responder, len(existing))
	for _, p := range existing {
		byPhone[p.Phone] = p
	}
	var plan []importStep
	for _, e := range roster.Entries {
		old, found := byPhone[e.Responder.Phone]
		base := old
		if !found {
			base = Responder{Community: community, Phone: e.Responder.Phone, Available: true, Kind: KindVolunteer,
				Locale: "zh-CN", Skills: []string{}, Certificates: []Certificate{}}
		}
		next := mergeRoster(base, e.Responder, roster.present)
		if err := next.Validate(r.Tax); err != nil {
			rep.Errors = append(rep.Errors, RosterProblem{Row: e.Row, Column: displayName(colName),
				Message: "与已登记的信息合并后无效：" + err.Error(), MessageEN: "invalid once merged with the registered record: " + err.Error()})
			rep.Failed++
			continue
		}
		switch {
		case !found:
			rep.Created++
		case sameRegistration(old, next):
			rep.Unchanged++
			continue
		default:
			rep.Updated++
		}
		plan = append(plan, importStep{row: e.Row, create: !found, responder: next})
	}
	slices.SortStableFunc(rep.Errors, func(a, b RosterProblem) int { return a.Row - b.Row })
	return plan, nil
}

// mergeRoster lays the roster's columns over a registered responder: a
// column the file has replaces the value (an empty cell clears it); a
// column it lacks leaves the value alone.
func mergeRoster(base, in Responder, present map[string]bool) Responder {
	out := base
	out.Name = in.Name
	if present[colSkills] {
		out.Skills = in.Skills
	}
	if present[colCerts] {
		out.Certificates = in.Certificates
	}
	if present[colParty] {
		out.PartyMember = in.PartyMember
	}
	if present[colTeam] {
		out.Team = in.Team
	}
	if present[colLocation] {
		out.Location = in.Location
	}
	if present[colAvailability] {
		out.Availability = in.Availability
	}
	if present[colKind] {
		out.Kind = in.Kind
	}
	if present[colLocale] {
		out.Locale = in.Locale
	}
	return out
}

// sameRegistration reports whether an import would change nothing a
// roster sets.
func sameRegistration(a, b Responder) bool {
	if a.Name != b.Name || a.PartyMember != b.PartyMember || a.Team != b.Team || a.Location != b.Location ||
		a.Kind != b.Kind || a.Locale != b.Locale || !slices.Equal(a.Skills, b.Skills) ||
		len(a.Certificates) != len(b.Certificates) || len(a.Availability) != len(b.Availability) {
		return false
	}
	for i, c := range a.Certificates {
		d := b.Certificates[i]
		if c.Skill != d.Skill || c.Name != d.Name || c.Number != d.Number || !c.ExpiresAt.Equal(d.ExpiresAt) {
			return false
		}
	}
	for i, w := range a.Availability {
		v := b.Availability[i]
		if w.Start != v.Start || w.End != v.End || !slices.Equal(w.Days, v.Days) {
			return false
		}
	}
	return true
}

// updateFromRoster writes the fields a roster sets. It leaves alone what
// the roster does not own: the phone (the key), whether the responder is
// taking calls now, and the incident they are busy with.
func updateFromRoster(ctx context.Context, q storage.Querier, p Responder) error {
	_, err := q.Exec(ctx, `UPDATE responders SET name = $2, skills = $3, certificates = $4, party_member = $5, kind = $6,
		team_id = $7, lat = $8, lng = $9, locale = $10, availability = $11, updated_at = $12 WHERE id = $1`,
		p.ID, p.Name, mustJSON(p.Skills), mustJSON(p.Certificates), p.PartyMember, p.Kind, p.Team,
		p.Location.Lat, p.Location.Lng, p.Locale, availabilityJSON(p.Availability), p.UpdatedAt.UnixMilli())
	return err
}
