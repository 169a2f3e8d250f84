package responders

import (
	"context"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// Vulnerability marks residents who need someone to check on them in an
// emergency (plans give a duty per such resident in range).
const (
	VulnerableElderlyAlone = "elderly_alone"
	VulnerableDisabled     = "disabled"
	VulnerableOther        = "other"
)

// Resident is a registered resident: who may press alarms, and where a
// phone lets us tell them what happens. A resident token's subject is the
// resident's id.
type Resident struct {
	ID         string     `json:"id"`
	Community  string     `json:"community"`
	Name       string     `json:"name"`
	Phone      string     `json:"phone,omitempty"`
	Address    string     `json:"address,omitempty"`
	Location   *geo.Point `json:"location,omitempty"`
	Vulnerable string     `json:"vulnerable,omitempty"`
	// Needs and Contact tell a volunteer checking on a vulnerable resident
	// what to bring and whom to call (a relative, a neighbour).
	Needs     string    `json:"needs,omitempty"`
	Contact   string    `json:"contact,omitempty"`
	Locale    string    `json:"locale"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate checks a resident before it is stored.
func (r Resident) Validate() error {
	verr := &errdefs.ValidationError{}
	checkName(verr, "name", r.Name, true)
	if r.Phone != "" && !ValidPhone(r.Phone) {
		verr.Add("phone", "an E.164 number such as +8613800000000")
	}
	checkName(verr, "address", r.Address, false)
	checkName(verr, "contact", r.Contact, false)
	if utf8.RuneCountInString(r.Needs) > 200 || incidents.HasControl(r.Needs, true) {
		verr.Add("needs", "at most 200 characters without control characters")
	}
	if r.Location != nil {
		checkPoint(verr, "location", *r.Location)
	}
	switch r.Vulnerable {
	case "", VulnerableElderlyAlone, VulnerableDisabled, VulnerableOther:
	default:
		verr.Add("vulnerable", "empty, elderly_alone, disabled or other")
	}
	checkLocale(verr, r.Locale)
	return verr.OrNil()
}

const residentColumns = `id, community_id, name, phone, address, lat, lng, vulnerable, needs, contact, locale, created_at`

func scanResident(row storage.Row) (Resident, error) {
	var r Resident
	var lat, lng float64
	var at int64
	if err := row.Scan(&r.ID, &r.Community, &r.Name, &r.Phone, &r.Address, &lat, &lng, &r.Vulnerable, &r.Needs, &r.Contact,
		&r.Locale, &at); err != nil {
		return Resident{}, err
	}
	if lat != 0 || lng != 0 {
		r.Location = &geo.Point{Lat: lat, Lng: lng}
	}
	r.CreatedAt = time.UnixMilli(at).UTC()
	return r, nil
}

func (r Resident) latLng() (float64, float64) {
	if r.Location == nil {
		return 0, 0
	}
	return r.Location.Lat, r.Location.Lng
}

// CreateResident registers a resident.
func (g *Registry) CreateResident(ctx context.Context, r Resident) (Resident, error) {
	if _, err := g.GetCommunity(ctx, r.Community); err != nil {
		return Resident{}, err
	}
	if r.Locale == "" {
		r.Locale = "zh-CN"
	}
	if err := checkNewID(r.ID); err != nil {
		return Resident{}, err
	}
	if err := r.Validate(); err != nil {
		return Resident{}, err
	}
	if err := g.checkResidentPhone(ctx, r); err != nil {
		return Resident{}, err
	}
	now := g.Now()
	if r.ID == "" {
		r.ID = events.NewID("rd", now)
	}
	r.CreatedAt = now.UTC()
	lat, lng := r.latLng()
	_, err := g.DB.Exec(ctx, `INSERT INTO residents (id, community_id, name, phone, address, lat, lng, vulnerable, locale,
		created_at, updated_at, needs, contact) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12)`,
		r.ID, r.Community, r.Name, r.Phone, r.Address, lat, lng, r.Vulnerable, r.Locale, now.UnixMilli(), r.Needs, r.Contact)
	if storage.IsUniqueViolation(err) {
		return Resident{}, fmt.Errorf("resident %s exists: %w", r.ID, errdefs.ErrConflict)
	}
	if err != nil {
		return Resident{}, fmt.Errorf("create resident: %w", err)
	}
	return r, nil
}

// checkResidentPhone keeps phones unique within a community: a text from
// a phone must name one resident.
func (g *Registry) checkResidentPhone(ctx context.Context, r Resident) error {
	if r.Phone == "" {
		return nil
	}
	var n int
	if err := g.DB.QueryRow(ctx, `SELECT COUNT(*) FROM residents WHERE community_id = $1 AND phone = $2 AND id <> $3`,
		r.Community, r.Phone, r.ID).Scan(&n); err != nil {
		return fmt.Errorf("check resident phone: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("a resident with phone %s is registered in %s: %w", r.Phone, r.Community, errdefs.ErrConflict)
	}
	return nil
}

// GetResident reads a resident of a community.
func (g *Registry) GetResident(ctx context.Context, community, id string) (Resident, error) {
	return ResidentIn(ctx, g.DB, community, id)
}

// ResidentIn reads a resident of a community, inside a transaction if q is one.
func ResidentIn(ctx context.Context, q storage.Querier, community, id string) (Resident, error) {
	r, err := scanResident(q.QueryRow(ctx, `SELECT `+residentColumns+` FROM residents WHERE id = $1 AND community_id = $2`, id, community))
	if err != nil {
		return Resident{}, notFound("resident", id, err)
	}
	return r, nil
}

// VulnerableNear lists the vulnerable residents of a community registered
// within radiusM of at, nearest first.
func VulnerableNear(ctx context.Context, q storage.Querier, community string, at geo.Point, radiusM float64) ([]Resident, error) {
	box := geo.BoxAround(at, radiusM)
	rows, err := q.Query(ctx, `SELECT `+residentColumns+` FROM residents WHERE community_id = $1 AND vulnerable <> ''
		AND lat BETWEEN $2 AND $3 AND lng BETWEEN $4 AND $5`, community, box.MinLat, box.MaxLat, box.MinLng, box.MaxLng)
	if err != nil {
		return nil, fmt.Errorf("vulnerable residents near %v: %w", at, err)
	}
	defer rows.Close()
	var out []Resident
	for rows.Next() {
		r, err := scanResident(rows)
		if err != nil {
			return nil, err
		}
		if r.Location != nil && geo.DistanceM(at, *r.Location) <= radiusM {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return geo.DistanceM(at, *out[i].Location) < geo.DistanceM(at, *out[j].Location)
	})
	return out, rows.Err()
}

// ListResidents lists a community's residents by name, a page at a time;
// vulnerableOnly keeps those registered as vulnerable.
func (g *Registry) ListResidents(ctx context.Context, community string, vulnerableOnly bool, limit, offset int) ([]Resident, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	rows, err := g.DB.Query(ctx, `SELECT `+residentColumns+` FROM residents WHERE community_id = $1 AND ($4 = false OR vulnerable <> '')
		ORDER BY name, id LIMIT $2 OFFSET $3`, community, limit, max(offset, 0), vulnerableOnly)
	if err != nil {
		return nil, fmt.Errorf("list residents: %w", err)
	}
	defer rows.Close()
	out := []Resident{}
	for rows.Next() {
		r, err := scanResident(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ResidentPatch changes some fields of a resident.
type ResidentPatch struct {
	Name       *string    `json:"name"`
	Phone      *string    `json:"phone"`
	Address    *string    `json:"address"`
	Location   *geo.Point `json:"location"`
	Vulnerable *string    `json:"vulnerable"`
	Needs      *string    `json:"needs"`
	Contact    *string    `json:"contact"`
	Locale     *string    `json:"locale"`
}

// UpdateResident applies a patch.
func (g *Registry) UpdateResident(ctx context.Context, community, id string, p ResidentPatch) (Resident, error) {
	r, err := g.GetResident(ctx, community, id)
	if err != nil {
		return Resident{}, err
	}
	set(&r.Name, p.Name)
	set(&r.Phone, p.Phone)
	set(&r.Address, p.Address)
	set(&r.Vulnerable, p.Vulnerable)
	set(&r.Needs, p.Needs)
	set(&r.Contact, p.Contact)
	set(&r.Locale, p.Locale)
	if p.Location != nil {
		r.Location = p.Location
	}
	if err := r.Validate(); err != nil {
		return Resident{}, err
	}
	if err := g.checkResidentPhone(ctx, r); err != nil {
		return Resident{}, err
	}
	lat, lng := r.latLng()
	if _, err := g.DB.Exec(ctx, `UPDATE residents SET name = $2, phone = $3, address = $4, lat = $5, lng = $6, vulnerable = $7,
		locale = $8, updated_at = $9, needs = $10, contact = $11 WHERE id = $1`, r.ID, r.Name, r.Phone, r.Address, lat, lng,
		r.Vulnerable, r.Locale, g.Now().UnixMilli(), r.Needs, r.Contact); err != nil {
		return Resident{}, fmt.Errorf("update resident %s: %w", id, err)
	}
	return r, nil
}

// NormalizePhone turns a mobile number as people type it ("138 0000 0000",
// "+86 138-0000-0000", full-width digits) into E.164, as roster imports do.
func NormalizePhone(s string) (string, bool) { return normalizePhone(s) }

// ResidentByPhone finds the resident registered with phone (E.164). A phone
// may be registered in several communities (a flat in each): the one in
// community is taken when community is given, else the registration
// changed last, as for alarms texted in. None: ErrNotFound.
func ResidentByPhone(ctx context.Context, q storage.Querier, phone, community string) (Resident, error) {
	r, err := scanResident(q.QueryRow(ctx, `SELECT `+residentColumns+` FROM residents
		WHERE phone = $1 AND phone <> '' AND ($2 = '' OR community_id = $2) ORDER BY updated_at DESC, id LIMIT 1`, phone, community))
	if err != nil {
		return Resident{}, notFound("resident with phone", sms.Mask(phone), err)
	}
	return r, nil
}
