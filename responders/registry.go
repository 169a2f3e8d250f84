// Package responders is the registry of the people and organisations who
// answer: communities, organisations, responders with skills and
// certificates; and dispatch: matching them to incidents, offering in
// waves, taking their answers and escalating when nobody comes.
package responders

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
)

// Community is a residential community (社区) served by one emergency center.
type Community struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	NameEN    string    `json:"name_en,omitempty"`
	Location  geo.Point `json:"location"`
	Locale    string    `json:"locale"`
	SMSNumber string    `json:"sms_number,omitempty"` // residents text it to raise an alarm; optional
	CreatedAt time.Time `json:"created_at"`
}

// Organisation kinds.
const (
	OrgEmergencyCenter = "emergency_center"
	OrgPropertyCompany = "property_company"
	OrgOwnersCommittee = "owners_committee"
	OrgVolunteerTeam   = "volunteer_team"
	OrgHealthStation   = "health_station"
	OrgPoliceOffice    = "police_office"
)

var orgKinds = []string{OrgEmergencyCenter, OrgPropertyCompany, OrgOwnersCommittee, OrgVolunteerTeam, OrgHealthStation, OrgPoliceOffice}

// OrganisationKinds lists the kinds of organisation, for plans and forms.
func OrganisationKinds() []string { return append([]string(nil), orgKinds...) }

// Organisation is a party with duties: the emergency center, the property
// company, the owners' committee, a volunteer team…
type Organisation struct {
	ID        string    `json:"id"`
	Community string    `json:"community"`
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	DutyPhone string    `json:"duty_phone,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Certificate proves a skill until it expires.
type Certificate struct {
	Skill     string    `json:"skill"`
	Name      string    `json:"name,omitempty"`
	Number    string    `json:"number,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Responder kinds.
const (
	KindProfessional = "professional"
	KindVolunteer    = "volunteer"
)

// Responder is a person who may be asked to come.
type Responder struct {
	ID           string        `json:"id"`
	Community    string        `json:"community"`
	Name         string        `json:"name"`
	Phone        string        `json:"phone"`
	Skills       []string      `json:"skills"`
	Certificates []Certificate `json:"certificates"`
	PartyMember  bool          `json:"party_member"`
	Kind         string        `json:"kind"`
	Team         string        `json:"team,omitempty"`
	Location     geo.Point     `json:"location"`
	Available    bool          `json:"available"`
	// Availability limits when the responder may be called; empty is any time.
	Availability Availability `json:"availability,omitempty"`
	BusyIncident string       `json:"busy_incident,omitempty"`
	Locale       string       `json:"locale"`
	CreatedAt    time.Time    `json:"created_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
}

// Qualified reports whether r can be sent for skill at now: it has the
// skill, and a certificate valid at now if the skill needs one.
func (r Responder) Qualified(tax *events.Taxonomy, skill string, now time.Time) bool {
	has := false
	for _, s := range r.Skills {
		if s == skill {
			has = true
			break
		}
	}
	if !has {
		return false
	}
	if sk, ok := tax.Skills[skill]; !ok || !sk.Certified {
		return ok
	}
	for _, c := range r.Certificates {
		if c.Skill == skill && c.ExpiresAt.After(now) {
			return true
		}
	}
	return false
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// ValidPhone checks an E.164 number. The leading + is required: a number
// without a country code cannot be texted reliably.
func ValidPhone(p string) bool { return e164.MatchString(p) }

func checkName(verr *errdefs.ValidationError, field, v string, required bool) {
	switch {
	case required && strings.TrimSpace(v) == "":
		verr.Add(field, "required")
	case !utf8.ValidString(v) || utf8.RuneCountInString(v) > 100 || incidents.HasControl(v, false):
		verr.Add(field, "must be text of at most 100 characters without control characters")
	}
}

func checkPoint(verr *errdefs.ValidationError, field string, p geo.Point) {
	if err := p.Validate(); err != nil {
		verr.Add(field, err.Error())
	}
}

func checkLocale(verr *errdefs.ValidationError, l string) {
	if l != "" && l != "zh-CN" && l != "en" {
		verr.Add("locale", "zh-CN or en")
	}
}

var slug = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,62}$`)

// recordID is the rule for ids a client chooses for responders,
// organisations and residents: like a community's, but one character will do.
var recordID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// checkNewID refuses an id a client chose for a new record unless it is a
// slug: ids travel in URLs, logs and texts, where quotes, spaces, slashes
// and control characters break things ("'; DROP TABLE responders;--" was
// accepted as a responder id). Generated ids are slugs. Stored ids are not
// checked again, so records made before this rule can still be changed.
func checkNewID(id string) error {
	if id != "" && !recordID.MatchString(id) {
		return errdefs.Invalid("id", "1–63 characters of a–z, 0–9, _ and -")
	}
	return nil
}

// Validate checks a community before it is stored.
func (c Community) Validate() error {
	verr := &errdefs.ValidationError{}
	if c.ID != "" && !slug.MatchString(c.ID) {
		verr.Add("id", "2–63 characters of a–z, 0–9, _ and -")
	}
	checkName(verr, "name", c.Name, true)
	checkName(verr, "name_en", c.NameEN, false)
	checkPoint(verr, "location", c.Location)
	checkLocale(verr, c.Locale)
	if c.SMSNumber != "" && !ValidPhone(c.SMSNumber) {
		verr.Add("sms_number", "an E.164 number such as +8610690000000")
	}
	return verr.OrNil()
}

// Validate checks an organisation before it is stored.
func (o Organisation) Validate() error {
	verr := &errdefs.ValidationError{}
	if !contains(orgKinds, o.Kind) {
		verr.Add("kind", "one of "+strings.Join(orgKinds, ", "))
	}
	checkName(verr, "name", o.Name, true)
	if o.DutyPhone != "" && !ValidPhone(o.DutyPhone) {
		verr.Add("duty_phone", "an E.164 number such as +8613800000000")
	}
	if o.Kind == OrgEmergencyCenter && o.DutyPhone == "" {
		verr.Add("duty_phone", "required for the emergency center: escalations are texted to it")
	}
	return verr.OrNil()
}

// Validate checks a responder before it is stored.
func (r Responder) Validate(tax *events.Taxonomy) error {
	verr := &errdefs.ValidationError{}
	checkName(verr, "name", r.Name, true)
	if !ValidPhone(r.Phone) {
		verr.Add("phone", "an E.164 number such as +8613800000000")
	}
	if len(r.Skills) > 20 {
		verr.Add("skills", "at most 20")
	}
	for _, s := range r.Skills {
		if _, ok := tax.Skills[s]; !ok {
			verr.Add("skills", "unknown skill "+s+"; one of "+strings.Join(tax.SkillNames(), ", "))
		}
	}
	for _, c := range r.Certificates {
		if _, ok := tax.Skills[c.Skill]; !ok {
			verr.Add("certificates", "unknown skill "+c.Skill)
		}
		if c.ExpiresAt.IsZero() {
			verr.Add("certificates", "expires_at is required")
		}
	}
	if r.Kind != KindProfessional && r.Kind != KindVolunteer {
		verr.Add("kind", "professional or volunteer")
	}
	checkPoint(verr, "location", r.Location)
	checkLocale(verr, r.Locale)
	r.Availability.Validate(verr, "availability")
	return verr.OrNil()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
