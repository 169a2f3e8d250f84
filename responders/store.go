package responders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/storage"
)

// Registry stores communities, organisations and responders.
type Registry struct {
	DB  storage.DB
	Tax *events.Taxonomy
	Now func() time.Time
	// Keeper learns of every committed change to responders, for the
	// match index; nil when there is none. A Registry whose DB is a
	// transaction must have none (the change has not committed yet): its
	// caller tells the keeper after the commit.
	Keeper *IndexKeeper
}

func notFound(what, id string, err error) error {
	if errors.Is(err, storage.ErrNoRows) {
		return fmt.Errorf("%s %s: %w", what, id, errdefs.ErrNotFound)
	}
	return fmt.Errorf("read %s %s: %w", what, id, err)
}

// --- communities ---

// CreateCommunity stores a new community; an empty id gets one.
func (r *Registry) CreateCommunity(ctx context.Context, c Community) (Community, error) {
	if c.Locale == "" {
		c.Locale = "zh-CN"
	}
	if err := c.Validate(); err != nil {
		return Community{}, err
	}
	now := r.Now()
	if c.ID == "" {
		c.ID = strings.ToLower(events.NewID("c", now))
	}
	c.CreatedAt = now.UTC()
	_, err := r.DB.Exec(ctx, `INSERT INTO communities (id, name, name_en, lat, lng, locale, created_at, updated_at, sms_number)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)`, c.ID, c.Name, c.NameEN, c.Location.Lat, c.Location.Lng, c.Locale, now.UnixMilli(),
		c.SMSNumber)
	if storage.IsUniqueViolation(err) {
		return Community{}, fmt.Errorf("community %s exists: %w", c.ID, errdefs.ErrConflict)
	}
	if err != nil {
		return Community{}, fmt.Errorf("create community: %w", err)
	}
	return c, nil
}

const communityColumns = `id, name, name_en, lat, lng, locale, created_at, sms_number`

func scanCommunity(row storage.Row) (Community, error) {
	var c Community
	var at int64
	err := row.Scan(&c.ID, &c.Name, &c.NameEN, &c.Location.Lat, &c.Location.Lng, &c.Locale, &at, &c.SMSNumber)
	c.CreatedAt = time.UnixMilli(at).UTC()
	return c, err
}

// GetCommunity reads a community.
func (r *Registry) GetCommunity(ctx context.Context, id string) (Community, error) {
	c, err := scanCommunity(r.DB.QueryRow(ctx, `SELECT `+communityColumns+` FROM communities WHERE id = $1`, id))
	if err != nil {
		return Community{}, notFound("community", id, err)
	}
	return c, nil
}

// ListCommunities lists communities by id.
func (r *Registry) ListCommunities(ctx context.Context) ([]Community, error) {
	rows, err := r.DB.Query(ctx, `SELECT `+communityColumns+` FROM communities ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list communities: %w", err)
	}
	defer rows.Close()
	out := []Community{}
	for rows.Next() {
		c, err := scanCommunity(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CommunityPatch changes some fields of a community.
type CommunityPatch struct {
	Name      *string    `json:"name"`
	NameEN    *string    `json:"name_en"`
	Location  *geo.Point `json:"location"`
	Locale    *string    `json:"locale"`
	SMSNumber *string    `json:"sms_number"` // "" removes the number
}

// UpdateCommunity applies a patch.
func (r *Registry) UpdateCommunity(ctx context.Context, id string, p CommunityPatch) (Community, error) {
	c, err := r.GetCommunity(ctx, id)
	if err != nil {
		return Community{}, err
	}
	set(&c.Name, p.Name)
	set(&c.NameEN, p.NameEN)
	set(&c.Location, p.Location)
	set(&c.Locale, p.Locale)
	set(&c.SMSNumber, p.SMSNumber)
	if err := c.Validate(); err != nil {
		return Community{}, err
	}
	_, err = r.DB.Exec(ctx, `UPDATE communities SET name = $2, name_en = $3, lat = $4, lng = $5, locale = $6, updated_at = $7,
		sms_number = $8 WHERE id = $1`, c.ID, c.Name, c.NameEN, c.Location.Lat, c.Location.Lng, c.Locale, r.Now().UnixMilli(), c.SMSNumber)
	if err != nil {
		return Community{}, fmt.Errorf("update community %s: %w", id, err)
	}
	return c, nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// --- organisations ---

// CreateOrganisation stores a new organisation of a community.
func (r *Registry) CreateOrganisation(ctx context.Context, o Organisation) (Organisation, error) {
	if _, err := r.GetCommunity(ctx, o.Community); err != nil {
		return Organisation{}, err
	}
	if err := checkNewID(o.ID); err != nil {
		return Organisation{}, err
	}
	if err := o.Validate(); err != nil {
		return Organisation{}, err
	}
	now := r.Now()
	if o.ID == "" {
		o.ID = events.NewID("org", now)
	}
	o.CreatedAt = now.UTC()
	_, err := r.DB.Exec(ctx, `INSERT INTO organisations (id, community_id, kind, name, duty_phone, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`, o.ID, o.Community, o.Kind, o.Name, o.DutyPhone, now.UnixMilli())
	if storage.IsUniqueViolation(err) {
		return Organisation{}, fmt.Errorf("organisation %s exists: %w", o.ID, errdefs.ErrConflict)
	}
	if err != nil {
		return Organisation{}, fmt.Errorf("create organisation: %w", err)
	}
	return o, nil
}

const orgColumns = `id, community_id, kind, name, duty_phone, created_at`

func scanOrg(row storage.Row) (Organisation, error) {
	var o Organisation
	var at int64
	err := row.Scan(&o.ID, &o.Community, &o.Kind, &o.Name, &o.DutyPhone, &at)
	o.CreatedAt = time.UnixMilli(at).UTC()
	return o, err
}

// GetOrganisation reads an organisation of a community.
func (r *Registry) GetOrganisation(ctx context.Context, community, id string) (Organisation, error) {
	o, err := scanOrg(r.DB.QueryRow(ctx, `SELECT `+orgColumns+` FROM organisations WHERE id = $1 AND community_id = $2`, id, community))
	if err != nil {
		return Organisation{}, notFound("organisation", id, err)
	}
	return o, nil
}

// ListOrganisations lists a community's organisations, optionally of one kind.
func (r *Registry) ListOrganisations(ctx context.Context, community, kind string) ([]Organisation, error) {
	return listOrgs(ctx, r.DB, community, kind)
}

func listOrgs(ctx context.Context, q storage.Querier, community, kind string) ([]Organisation, error) {
	rows, err := q.Query(ctx, `SELECT `+orgColumns+` FROM organisations WHERE community_id = $1 AND ($2 = '' OR kind = $2)
		ORDER BY created_at, id`, community, kind)
	if err != nil {
		return nil, fmt.Errorf("list organisations of %s: %w", community, err)
	}
	defer rows.Close()
	out := []Organisation{}
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// OrgOfKind finds a community's organisation of a kind (the first
// registered), for plans that assign duties by kind.
func OrgOfKind(ctx context.Context, q storage.Querier, community, kind string) (Organisation, bool, error) {
	orgs, err := listOrgs(ctx, q, community, kind)
	if err != nil || len(orgs) == 0 {
		return Organisation{}, false, err
	}
	return orgs[0], true, nil
}

// OrganisationPatch changes some fields of an organisation.
type OrganisationPatch struct {
	Name      *string `json:"name"`
	DutyPhone *string `json:"duty_phone"`
}

// UpdateOrganisation applies a patch.
func (r *Registry) UpdateOrganisation(ctx context.Context, community, id string, p OrganisationPatch) (Organisation, error) {
	o, err := r.GetOrganisation(ctx, community, id)
	if err != nil {
		return Organisation{}, err
	}
	set(&o.Name, p.Name)
	set(&o.DutyPhone, p.DutyPhone)
	if err := o.Validate(); err != nil {
		return Organisation{}, err
	}
	if _, err := r.DB.Exec(ctx, `UPDATE organisations SET name = $2, duty_phone = $3, updated_at = $4 WHERE id = $1`,
		o.ID, o.Name, o.DutyPhone, r.Now().UnixMilli()); err != nil {
		return Organisation{}, fmt.Errorf("update organisation %s: %w", id, err)
	}
	return o, nil
}

// --- responders ---

// CreateResponder registers a responder.
func (r *Registry) CreateResponder(ctx context.Context, p Responder) (Responder, error) {
	if _, err := r.GetCommunity(ctx, p.Community); err != nil {
		return Responder{}, err
	}
	if p.Kind == "" {
		p.Kind = KindVolunteer
	}
	if p.Locale == "" {
		p.Locale = "zh-CN"
	}
	if p.Skills == nil {
		p.Skills = []string{}
	}
	if p.Certificates == nil {
		p.Certificates = []Certificate{}
	}
	if err := checkNewID(p.ID); err != nil {
		return Responder{}, err
	}
	if err := p.Validate(r.Tax); err != nil {
		return Responder{}, err
	}
	if err := r.checkTeam(ctx, p); err != nil {
		return Responder{}, err
	}
	now := r.Now()
	if p.ID == "" {
		p.ID = events.NewID("rs", now)
	}
	p.CreatedAt, p.UpdatedAt = now.UTC(), now.UTC()
	err := insertResponder(ctx, r.DB, p)
	if storage.IsUniqueViolation(err) {
		return Responder{}, fmt.Errorf("a responder with phone %s is registered in %s: %w", p.Phone, p.Community, errdefs.ErrConflict)
	}
	if err != nil {
		return Responder{}, fmt.Errorf("create responder: %w", err)
	}
	r.Keeper.Changed(ctx, p.Community, p.ID)
	return p, nil
}

// insertResponder writes a new responder row; p.CreatedAt is both its
// created and updated time. Roster imports call it inside their transaction.
func insertResponder(ctx context.Context, q storage.Querier, p Responder) error {
	_, err := q.Exec(ctx, `INSERT INTO responders (id, community_id, name, phone, skills, certificates, party_member, kind,
		team_id, lat, lng, available, locale, created_at, updated_at, availability)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15)`,
		p.ID, p.Community, p.Name, p.Phone, mustJSON(p.Skills), mustJSON(p.Certificates), p.PartyMember, p.Kind, p.Team,
		p.Location.Lat, p.Location.Lng, p.Available, p.Locale, p.CreatedAt.UnixMilli(), availabilityJSON(p.Availability))
	return err
}

func (r *Registry) checkTeam(ctx context.Context, p Responder) error {
	if p.Team == "" {
		return nil
	}
	if _, err := r.GetOrganisation(ctx, p.Community, p.Team); errors.Is(err, errdefs.ErrNotFound) {
		return errdefs.Invalid("team", "no organisation "+p.Team+" in community "+p.Community)
	} else if err != nil {
		return err
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain slices of plain structs reach here
	}
	return string(b)
}

const responderColumns = `id, community_id, name, phone, skills, certificates, party_member, kind, team_id, lat, lng,
	available, busy_incident, locale, created_at, updated_at, availability`

func availabilityJSON(a Availability) string {
	if a == nil {
		a = Availability{}
	}
	return mustJSON(a)
}

func scanResponder(row storage.Row) (Responder, error) {
	var p Responder
	var skills, certs, avail string
	var created, updated int64
	err := row.Scan(&p.ID, &p.Community, &p.Name, &p.Phone, &skills, &certs, &p.PartyMember, &p.Kind, &p.Team,
		&p.Location.Lat, &p.Location.Lng, &p.Available, &p.BusyIncident, &p.Locale, &created, &updated, &avail)
	if err != nil {
		return Responder{}, err
	}
	if err := json.Unmarshal([]byte(avail), &p.Availability); err != nil {
		return Responder{}, fmt.Errorf("availability of %s: %w", p.ID, err)
	}
	if len(p.Availability) == 0 {
		p.Availability = nil
	}
	if err := json.Unmarshal([]byte(skills), &p.Skills); err != nil {
		return Responder{}, fmt.Errorf("skills of %s: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(certs), &p.Certificates); err != nil {
		return Responder{}, fmt.Errorf("certificates of %s: %w", p.ID, err)
	}
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return p, nil
}

// GetResponder reads a responder of a community.
func (r *Registry) GetResponder(ctx context.Context, community, id string) (Responder, error) {
	p, err := scanResponder(r.DB.QueryRow(ctx, `SELECT `+responderColumns+` FROM responders WHERE id = $1 AND community_id = $2`, id, community))
	if err != nil {
		return Responder{}, notFound("responder", id, err)
	}
	return p, nil
}

// ListResponders lists a community's responders by name, a page at a time.
func (r *Registry) ListResponders(ctx context.Context, community string, limit, offset int) ([]Responder, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	return queryResponders(ctx, r.DB, `SELECT `+responderColumns+` FROM responders WHERE community_id = $1
		ORDER BY name, id LIMIT $2 OFFSET $3`, community, limit, max(offset, 0))
}

func queryResponders(ctx context.Context, q storage.Querier, sql string, args ...any) ([]Responder, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query responders: %w", err)
	}
	defer rows.Close()
	out := []Responder{}
	for rows.Next() {
		p, err := scanResponder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ResponderPatch changes some fields of a responder.
type ResponderPatch struct {
	Name         *string        `json:"name"`
	Phone        *string        `json:"phone"`
	Skills       *[]string      `json:"skills"`
	Certificates *[]Certificate `json:"certificates"`
	PartyMember  *bool          `json:"party_member"`
	Kind         *string        `json:"kind"`
	Team         *string        `json:"team"`
	Location     *geo.Point     `json:"location"`
	Available    *bool          `json:"available"`
	Availability *Availability  `json:"availability"`
	Locale       *string        `json:"locale"`
}

// UpdateResponder applies a patch.
func (r *Registry) UpdateResponder(ctx context.Context, community, id string, pt ResponderPatch) (Responder, error) {
	p, err := r.GetResponder(ctx, community, id)
	if err != nil {
		return Responder{}, err
	}
	set(&p.Name, pt.Name)
	set(&p.Phone, pt.Phone)
	set(&p.Skills, pt.Skills)
	set(&p.Certificates, pt.Certificates)
	set(&p.PartyMember, pt.PartyMember)
	set(&p.Kind, pt.Kind)
	set(&p.Team, pt.Team)
	set(&p.Location, pt.Location)
	set(&p.Available, pt.Available)
	set(&p.Availability, pt.Availability)
	set(&p.Locale, pt.Locale)
	if err := p.Validate(r.Tax); err != nil {
		return Responder{}, err
	}
	if err := r.checkTeam(ctx, p); err != nil {
		return Responder{}, err
	}
	now := r.Now()
	p.UpdatedAt = now.UTC()
	_, err = r.DB.Exec(ctx, `UPDATE responders SET name = $2, phone = $3, skills = $4, certificates = $5, party_member = $6,
		kind = $7, team_id = $8, lat = $9, lng = $10, available = $11, locale = $12, updated_at = $13, availability = $14 WHERE id = $1`,
		p.ID, p.Name, p.Phone, mustJSON(p.Skills), mustJSON(p.Certificates), p.PartyMember, p.Kind, p.Team,
		p.Location.Lat, p.Location.Lng, p.Available, p.Locale, now.UnixMilli(), availabilityJSON(p.Availability))
	if storage.IsUniqueViolation(err) {
		return Responder{}, fmt.Errorf("phone %s is registered to another responder: %w", p.Phone, errdefs.ErrConflict)
	}
	if err != nil {
		return Responder{}, fmt.Errorf("update responder %s: %w", id, err)
	}
	r.Keeper.Changed(ctx, p.Community, p.ID)
	return p, nil
}
