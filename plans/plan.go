// Package plans is the community's contingency plans (应急预案): versioned
// YAML documents, the plan run an incident starts, and the duties it hands
// to the emergency center, the property company, the owners' committee and
// the volunteers.
package plans

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
)

// ForEachVulnerable makes one duty per registered vulnerable resident
// (elderly living alone, disabled…) within the incident's radius.
const ForEachVulnerable = "vulnerable_residents_in_area"

// Plan is one version of a contingency plan.
type Plan struct {
	ID        string       `json:"id"`
	Version   int          `json:"version"`
	Title     events.Label `json:"title"`
	Types     []string     `json:"types"`
	SevFrom   int          `json:"-"` // least severe it applies to (IV = 4)
	SevTo     int          `json:"-"` // most severe (I = 1)
	Community string       `json:"community,omitempty"`
	Steps     []Step       `json:"steps"`
	Doc       string       `json:"-"`
}

// Step is what one party must do.
type Step struct {
	ID           string       `json:"id"`
	Title        events.Label `json:"title"`
	Assignee     string       `json:"assignee"`
	DueMinutes   float64      `json:"due_minutes"`
	Instructions events.Label `json:"instructions"`
	DependsOn    []string     `json:"depends_on,omitempty"`
	ForEach      string       `json:"for_each,omitempty"`
}

// Applies reports whether the plan covers an incident.
func (p Plan) Applies(community, typ string, sev events.Severity) bool {
	if p.Community != "" && p.Community != community {
		return false
	}
	if int(sev) > p.SevFrom || int(sev) < p.SevTo {
		return false
	}
	for _, t := range p.Types {
		if t == typ {
			return true
		}
	}
	return false
}

// Problem is one thing wrong with a plan document, at a line.
type Problem struct {
	Line    int    `json:"line"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	return fmt.Sprintf("line %d: %s: %s", p.Line, p.Field, p.Message)
}

// Problems is every error in a document; Parse returns them all at once,
// so an author fixes a plan in one pass.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

type doc struct {
	ID        string       `yaml:"id"`
	Title     events.Label `yaml:"title"`
	AppliesTo struct {
		Types    []string `yaml:"types"`
		Severity struct {
			From string `yaml:"from"`
			To   string `yaml:"to"`
		} `yaml:"severity"`
	} `yaml:"applies_to"`
	Community string `yaml:"community"`
	Steps     []struct {
		ID           string       `yaml:"id"`
		Title        events.Label `yaml:"title"`
		Assignee     string       `yaml:"assignee"`
		DueMinutes   float64      `yaml:"due_minutes"`
		Instructions events.Label `yaml:"instructions"`
		DependsOn    []string     `yaml:"depends_on"`
		ForEach      string       `yaml:"for_each"`
	} `yaml:"steps"`
}

var (
	planID     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)
	stepID     = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,62}$`)
	yamlLineRe = regexp.MustCompile(`line (\d+): (.*)`)
)

// Parse reads and checks a plan document. Every problem is reported with
// the line it is on.
func Parse(tax *events.Taxonomy, src []byte) (Plan, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return Plan{}, yamlProblems(err)
	}
	if len(root.Content) == 0 {
		return Plan{}, Problems{{Line: 1, Field: "document", Message: "empty"}}
	}
	var d doc
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil {
		return Plan{}, yamlProblems(err)
	}
	n := root.Content[0]
	var ps Problems
	add := func(line int, field, msg string) { ps = append(ps, Problem{Line: line, Field: field, Message: msg}) }
	at := func(path ...string) int { return lineOf(n, path...) }

	if !planID.MatchString(d.ID) {
		add(at("id"), "id", "required: 2–63 characters of a–z, 0–9 and -")
	}
	checkLabel(add, at, "title", d.Title, 40, true)
	if len(d.AppliesTo.Types) == 0 {
		add(at("applies_to", "types"), "applies_to.types", "at least one incident type")
	}
	for i, t := range d.AppliesTo.Types {
		if _, ok := tax.Type(t); !ok {
			add(at("applies_to", "types", strconv.Itoa(i)), "applies_to.types", "unknown incident type "+strconv.Quote(t)+"; one of "+strings.Join(tax.TypeNames(), ", "))
		}
	}
	from, to := 4, 1
	if s := d.AppliesTo.Severity.From; s != "" {
		if v, err := events.ParseSeverity(s); err != nil {
			add(at("applies_to", "severity", "from"), "applies_to.severity.from", err.Error())
		} else {
			from = int(v)
		}
	}
	if s := d.AppliesTo.Severity.To; s != "" {
		if v, err := events.ParseSeverity(s); err != nil {
			add(at("applies_to", "severity", "to"), "applies_to.severity.to", err.Error())
		} else {
			to = int(v)
		}
	}
	if from < to {
		add(at("applies_to", "severity"), "applies_to.severity", "from is the least severe level and to the most severe (from: IV, to: I)")
	}
	if d.Community != "" && !planID.MatchString(d.Community) {
		add(at("community"), "community", "a community id")
	}
	if len(d.Steps) == 0 || len(d.Steps) > 50 {
		add(at("steps"), "steps", "1 to 50 steps")
	}
	seen := map[string]bool{}
	p := Plan{ID: d.ID, Title: d.Title, Types: d.AppliesTo.Types, SevFrom: from, SevTo: to, Community: d.Community, Doc: string(src)}
	for i, s := range d.Steps {
		idx := strconv.Itoa(i)
		field := func(f string) string { return "steps[" + idx + "]." + f }
		sat := func(path ...string) int { return at(append([]string{"steps", idx}, path...)...) }
		if !stepID.MatchString(s.ID) {
			add(sat("id"), field("id"), "required: a–z, 0–9 and _")
		} else if seen[s.ID] {
			add(sat("id"), field("id"), "duplicate step id "+s.ID)
		}
		checkLabel(add, sat, field("title"), s.Title, 40, true)
		checkLabel(add, sat, field("instructions"), s.Instructions, 200, false)
		if !validAssignee(tax, s.Assignee) {
			add(sat("assignee"), field("assignee"), "an organisation kind ("+strings.Join(responders.OrganisationKinds(), ", ")+") or skill:<skill>")
		}
		if s.DueMinutes <= 0 || s.DueMinutes > 7*24*60 {
			add(sat("due_minutes"), field("due_minutes"), "a number of minutes above 0, at most a week")
		}
		for j, dep := range s.DependsOn {
			if !seen[dep] {
				add(sat("depends_on", strconv.Itoa(j)), field("depends_on"), "must name an earlier step, not "+strconv.Quote(dep))
			}
		}
		if s.ForEach != "" && s.ForEach != ForEachVulnerable {
			add(sat("for_each"), field("for_each"), "only "+ForEachVulnerable)
		}
		seen[s.ID] = true
		p.Steps = append(p.Steps, Step{ID: s.ID, Title: s.Title, Assignee: s.Assignee, DueMinutes: s.DueMinutes,
			Instructions: s.Instructions, DependsOn: s.DependsOn, ForEach: s.ForEach})
	}
	if len(ps) > 0 {
		return Plan{}, ps
	}
	return p, nil
}

func validAssignee(tax *events.Taxonomy, a string) bool {
	if skill, ok := strings.CutPrefix(a, "skill:"); ok {
		_, known := tax.Skills[skill]
		return known
	}
	for _, k := range responders.OrganisationKinds() {
		if a == k {
			return true
		}
	}
	return false
}

func checkLabel(add func(int, string, string), at func(...string) int, field string, l events.Label, max int, required bool) {
	if required && strings.TrimSpace(l.ZH) == "" {
		add(at(lastKey(field)), field+".zh", "required")
	}
	for lang, v := range map[string]string{"zh": l.ZH, "en": l.EN} {
		if utf8.RuneCountInString(v) > max {
			add(at(lastKey(field), lang), field+"."+lang, fmt.Sprintf("at most %d characters: it is sent by SMS", max))
		}
	}
}

func lastKey(field string) string {
	if i := strings.LastIndex(field, "."); i >= 0 {
		return field[i+1:]
	}
	return field
}

// lineOf finds the line of the value at path (mapping keys and sequence
// indexes); where the path stops existing, the line of the deepest node
// found.
func lineOf(n *yaml.Node, path ...string) int {
	line := n.Line
	for _, key := range path {
		switch n.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					// The key's line: for a block mapping the value starts
					// on the next line, but the author looks for the key.
					line = n.Content[i].Line
					n, found = n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
			continue
		case yaml.SequenceNode:
			i, err := strconv.Atoi(key)
			if err != nil || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

// yamlProblems turns the YAML library's errors into problems with lines.
func yamlProblems(err error) error {
	var te *yaml.TypeError
	var ps Problems
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			ps = append(ps, lineProblem(e))
		}
		return ps
	}
	return Problems{lineProblem(err.Error())}
}

func lineProblem(msg string) Problem {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Field: "document", Message: m[2]}
	}
	return Problem{Line: 1, Field: "document", Message: msg}
}
