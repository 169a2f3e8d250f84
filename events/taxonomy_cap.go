package events

import (
	"fmt"
	"slices"
	"strings"
)

// The CAP 1.2 code lists a type's cap block may use, as the OASIS schema
// enumerates them (cap/captest checks these against CAP-v1.2.xsd).
var (
	CAPCategories    = []string{"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"}
	CAPUrgencies     = []string{"Immediate", "Expected", "Future", "Past", "Unknown"}
	CAPCertainties   = []string{"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
	CAPResponseTypes = []string{"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"}
)

// MinPublicAreaRadiusM is the smallest alert area a public type may have:
// a smaller circle would point at one building, and so at the people who
// called for help.
const MinPublicAreaRadiusM = 200

// CAP says how incidents of a type appear as CAP 1.2 alerts.
type CAP struct {
	// Public types are listed in the anonymous feed and their alerts can be
	// read by anyone; the others are seen only by the community's
	// dispatchers (scope Restricted).
	Public       bool
	Category     string // CAP category, e.g. Met
	Event        Label  // what the alert is about; the type's label unless set
	Urgency      string
	Certainty    string
	ResponseType []string // what people should do, e.g. Avoid
	AreaRadiusM  float64  // radius of the alert's circle around the incident
	Instruction  Label    // what people in the area should do (public types)
}

type capFile struct {
	Public       bool     `yaml:"public"`
	Category     string   `yaml:"category"`
	Event        Label    `yaml:"event"`
	Urgency      string   `yaml:"urgency"`
	Certainty    string   `yaml:"certainty"`
	ResponseType []string `yaml:"response_type"`
	AreaRadiusM  float64  `yaml:"area_radius_m"`
	Instruction  Label    `yaml:"instruction"`
}

// parseCAP checks a type's cap block. Every type needs one: whether an
// incident is shown to the public is a decision, not a default.
func parseCAP(f *capFile, label Label) (CAP, error) {
	if f == nil {
		return CAP{}, fmt.Errorf("cap: missing (public, category, urgency, certainty, area_radius_m)")
	}
	var problems []string
	oneOf := func(field, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			problems = append(problems, fmt.Sprintf("%s %q: want one of %s", field, v, strings.Join(allowed, ", ")))
		}
	}
	oneOf("category", f.Category, CAPCategories)
	oneOf("urgency", f.Urgency, CAPUrgencies)
	oneOf("certainty", f.Certainty, CAPCertainties)
	for _, r := range f.ResponseType {
		// AllClear is what the all-clear update says, not what an alert asks.
		oneOf("response_type", r, slices.DeleteFunc(slices.Clone(CAPResponseTypes), func(s string) bool { return s == "AllClear" }))
	}
	if (f.Event.ZH == "") != (f.Event.EN == "") {
		problems = append(problems, "event: give both zh and en, or neither for the type's label")
	}
	if f.AreaRadiusM <= 0 {
		problems = append(problems, "area_radius_m: want a radius > 0")
	}
	if f.Public {
		if f.AreaRadiusM < MinPublicAreaRadiusM {
			problems = append(problems, fmt.Sprintf("area_radius_m: a public alert's area is at least %d m", MinPublicAreaRadiusM))
		}
		if f.Instruction.ZH == "" || f.Instruction.EN == "" {
			problems = append(problems, "instruction: a public type tells people what to do, in zh and en")
		}
		if len(f.ResponseType) == 0 {
			problems = append(problems, "response_type: a public type needs at least one")
		}
	}
	if len(problems) > 0 {
		return CAP{}, fmt.Errorf("cap: %s", strings.Join(problems, "; "))
	}
	c := CAP{Public: f.Public, Category: f.Category, Event: f.Event, Urgency: f.Urgency, Certainty: f.Certainty,
		ResponseType: f.ResponseType, AreaRadiusM: f.AreaRadiusM, Instruction: f.Instruction}
	if c.Event.ZH == "" {
		c.Event = label
	}
	return c, nil
}

// PublicTypes lists the types whose incidents the public feed shows, in a
// stable order.
func (t *Taxonomy) PublicTypes() []string {
	var out []string
	for _, n := range t.TypeNames() {
		if t.Types[n].CAP.Public {
			out = append(out, n)
		}
	}
	return out
}
