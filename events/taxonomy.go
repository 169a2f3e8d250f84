package events

import (
	_ "embed"
	"fmt"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// Severity is one of the four national levels: 1 = I 特别重大 … 4 = IV 一般.
type Severity int

// Label is the Roman numeral people use ("I" … "IV").
func (s Severity) Label() string {
	switch s {
	case 1:
		return "I"
	case 2:
		return "II"
	case 3:
		return "III"
	case 4:
		return "IV"
	}
	return "?"
}

// ParseSeverity reads "I".."IV".
func ParseSeverity(s string) (Severity, error) {
	switch s {
	case "I":
		return 1, nil
	case "II":
		return 2, nil
	case "III":
		return 3, nil
	case "IV":
		return 4, nil
	}
	return 0, fmt.Errorf("severity %q: want I, II, III or IV", s)
}

// Label is a text in the two languages we ship.
type Label struct {
	ZH string `yaml:"zh" json:"zh-CN"`
	EN string `yaml:"en" json:"en"`
}

// In returns the label for a locale, zh-CN unless it asks for English.
func (l Label) In(locale string) string {
	if len(locale) >= 2 && locale[:2] == "en" && l.EN != "" {
		return l.EN
	}
	return l.ZH
}

// Skill is something a responder can be qualified for.
type Skill struct {
	Name  string
	Label Label
	// Certified skills need a valid certificate to be matched.
	Certified bool
}

// Correlation says when a press joins an open incident instead of opening one.
type Correlation struct {
	RadiusM float64
	Window  time.Duration
}

// Dispatch says how offers go out for a type.
type Dispatch struct {
	AcceptNeeded int     // acceptances that end the search
	WaveSize     int     // offers per wave
	Waves        int     // waves before the emergency center is texted
	RadiusM      float64 // search radius of the first wave
	RadiusGrowth float64 // factor the radius grows by each wave
}

// RadiusFor is the search radius of wave n (1-based).
func (d Dispatch) RadiusFor(wave int) float64 {
	r := d.RadiusM
	for i := 1; i < wave; i++ {
		r *= d.RadiusGrowth
	}
	return r
}

// IncidentType is one entry of the taxonomy.
type IncidentType struct {
	Name        string
	Label       Label
	Category    string
	Severity    Severity
	Skills      []string
	Correlation Correlation
	Dispatch    Dispatch
	CAP         CAP // how its incidents appear as CAP alerts
}

// Taxonomy is the set of incident types, categories and skills.
type Taxonomy struct {
	Categories map[string]Label
	Skills     map[string]Skill
	Types      map[string]IncidentType
}

//go:embed taxonomy.yaml
var taxonomyYAML []byte

var defaultTaxonomy = mustParseTaxonomy(taxonomyYAML)

// DefaultTaxonomy is the taxonomy shipped with Shouwang.
func DefaultTaxonomy() *Taxonomy { return defaultTaxonomy }

// Type looks up an incident type.
func (t *Taxonomy) Type(name string) (IncidentType, bool) {
	it, ok := t.Types[name]
	return it, ok
}

// TypeNames lists the types in a stable order, for error messages and docs.
func (t *Taxonomy) TypeNames() []string {
	names := make([]string, 0, len(t.Types))
	for n := range t.Types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SkillNames lists the skills in a stable order.
func (t *Taxonomy) SkillNames() []string {
	names := make([]string, 0, len(t.Skills))
	for n := range t.Skills {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type taxonomyFile struct {
	Categories map[string]Label `yaml:"categories"`
	Skills     map[string]struct {
		ZH        string `yaml:"zh"`
		EN        string `yaml:"en"`
		Certified bool   `yaml:"certified"`
	} `yaml:"skills"`
	Types map[string]struct {
		ZH          string   `yaml:"zh"`
		EN          string   `yaml:"en"`
		Category    string   `yaml:"category"`
		Severity    string   `yaml:"severity"`
		Skills      []string `yaml:"skills"`
		Correlation struct {
			RadiusM float64 `yaml:"radius_m"`
			Window  string  `yaml:"window"`
		} `yaml:"correlation"`
		Dispatch struct {
			AcceptNeeded int     `yaml:"accept_needed"`
			WaveSize     int     `yaml:"wave_size"`
			Waves        int     `yaml:"waves"`
			RadiusM      float64 `yaml:"radius_m"`
			RadiusGrowth float64 `yaml:"radius_growth"`
		} `yaml:"dispatch"`
		CAP *capFile `yaml:"cap"`
	} `yaml:"types"`
}

// ParseTaxonomy reads and checks a taxonomy document.
func ParseTaxonomy(doc []byte) (*Taxonomy, error) {
	var f taxonomyFile
	if err := yaml.Unmarshal(doc, &f); err != nil {
		return nil, fmt.Errorf("parse taxonomy: %w", err)
	}
	t := &Taxonomy{Categories: f.Categories, Skills: map[string]Skill{}, Types: map[string]IncidentType{}}
	for name, s := range f.Skills {
		t.Skills[name] = Skill{Name: name, Label: Label{ZH: s.ZH, EN: s.EN}, Certified: s.Certified}
	}
	for name, ft := range f.Types {
		sev, err := ParseSeverity(ft.Severity)
		if err != nil {
			return nil, fmt.Errorf("taxonomy type %s: %w", name, err)
		}
		if _, ok := t.Categories[ft.Category]; !ok {
			return nil, fmt.Errorf("taxonomy type %s: unknown category %q", name, ft.Category)
		}
		if len(ft.Skills) == 0 {
			return nil, fmt.Errorf("taxonomy type %s: no skills", name)
		}
		for _, s := range ft.Skills {
			if _, ok := t.Skills[s]; !ok {
				return nil, fmt.Errorf("taxonomy type %s: unknown skill %q", name, s)
			}
		}
		window, err := time.ParseDuration(ft.Correlation.Window)
		if err != nil || window <= 0 {
			return nil, fmt.Errorf("taxonomy type %s: correlation window %q: want a duration like 30m", name, ft.Correlation.Window)
		}
		d := ft.Dispatch
		if d.AcceptNeeded < 1 || d.WaveSize < 1 || d.Waves < 1 || d.RadiusM <= 0 || d.RadiusGrowth < 1 {
			return nil, fmt.Errorf("taxonomy type %s: dispatch needs accept_needed, wave_size, waves >= 1, radius_m > 0, radius_growth >= 1", name)
		}
		if ft.Correlation.RadiusM <= 0 || ft.ZH == "" || ft.EN == "" {
			return nil, fmt.Errorf("taxonomy type %s: needs zh and en labels and a correlation radius", name)
		}
		capConf, err := parseCAP(ft.CAP, Label{ZH: ft.ZH, EN: ft.EN})
		if err != nil {
			return nil, fmt.Errorf("taxonomy type %s: %w", name, err)
		}
		t.Types[name] = IncidentType{
			Name:        name,
			Label:       Label{ZH: ft.ZH, EN: ft.EN},
			Category:    ft.Category,
			Severity:    sev,
			Skills:      ft.Skills,
			Correlation: Correlation{RadiusM: ft.Correlation.RadiusM, Window: window},
			Dispatch: Dispatch{AcceptNeeded: d.AcceptNeeded, WaveSize: d.WaveSize, Waves: d.Waves,
				RadiusM: d.RadiusM, RadiusGrowth: d.RadiusGrowth},
			CAP: capConf,
		}
	}
	if _, ok := t.Types["other"]; !ok {
		return nil, fmt.Errorf("taxonomy: the type %q is required (a press without a type)", "other")
	}
	return t, nil
}

func mustParseTaxonomy(doc []byte) *Taxonomy {
	t, err := ParseTaxonomy(doc)
	if err != nil {
		panic(err)
	}
	return t
}
