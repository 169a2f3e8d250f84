package plans

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
)

// FuzzParsePlan feeds arbitrary documents to the plan linter an author
// uploads through POST /v1/plans. Whatever arrives, Parse must not panic;
// it either returns a plan that keeps every rule of a plan, or Problems,
// each with a field, a message and a line inside the document (line 1 for
// what concerns the whole file, such as an empty one); and the same
// document always gets the same answer.
func FuzzParsePlan(f *testing.F) {
	f.Add([]byte(goodPlan))
	seeds, err := filepath.Glob("seed/*.yaml")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed plans: %v", err)
	}
	for _, path := range seeds {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		"", "\n\n", "---\n", "~", "[]", "id: x\ntitle: [unclosed\n", "id: &a x\ntitle: *a\n",
		"a: &a [*a, *a]\n", "id: fire-x\nsteps: {a: 1}\n", "steps:\n  - depends_on: [x, x, x]\n",
		"id: \"'; DROP TABLE plans;--\"\ntitle: {zh: 1 OR 1=1}\n", "\t- tab\n", "id: a\nid: b\n",
		"steps:\n  - due_minutes: .nan\n  - due_minutes: -.inf\n  - due_minutes: 1e309\n",
		"applies_to: {types: [gas_leak], severity: {from: V, to: 0}}\n", "--- a\n--- b\n",
	} {
		f.Add([]byte(s))
	}
	tax := events.DefaultTaxonomy()
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse(tax, src)
		again, errAgain := Parse(tax, src)
		if !reflect.DeepEqual(p, again) || !reflect.DeepEqual(err, errAgain) {
			t.Fatalf("two answers for one document:\n%+v %v\n%+v %v", p, err, again, errAgain)
		}
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error %v (%T) is not a list of problems", err, err)
			}
			lines := yamlLines(src)
			for _, pr := range ps {
				if pr.Line < 1 || pr.Line > lines+1 || pr.Field == "" || pr.Message == "" {
					t.Fatalf("problem outside a document of %d lines, or without a field or message: %+v", lines, pr)
				}
			}
			if !reflect.DeepEqual(p, Plan{}) {
				t.Fatalf("a plan came back with problems: %+v", p)
			}
			return
		}
		checkPlan(t, tax, p)
		if p.Doc != string(src) {
			t.Fatal("the plan does not keep its document")
		}
	})
}

// checkPlan asserts the rules of a plan, written out again from the plan
// format's documentation.
func checkPlan(t *testing.T, tax *events.Taxonomy, p Plan) {
	t.Helper()
	if !planID.MatchString(p.ID) || (p.Community != "" && !planID.MatchString(p.Community)) {
		t.Fatalf("accepted id %q, community %q", p.ID, p.Community)
	}
	if strings.TrimSpace(p.Title.ZH) == "" || utf8.RuneCountInString(p.Title.ZH) > 40 || utf8.RuneCountInString(p.Title.EN) > 40 {
		t.Fatalf("accepted title %+v", p.Title)
	}
	if len(p.Types) == 0 || p.SevTo < 1 || p.SevFrom > 4 || p.SevTo > p.SevFrom {
		t.Fatalf("accepted types %v, severity %d..%d", p.Types, p.SevFrom, p.SevTo)
	}
	for _, typ := range p.Types {
		if _, ok := tax.Type(typ); !ok {
			t.Fatalf("accepted unknown type %q", typ)
		}
	}
	if len(p.Steps) < 1 || len(p.Steps) > 50 {
		t.Fatalf("accepted %d steps", len(p.Steps))
	}
	earlier := map[string]bool{}
	for _, s := range p.Steps {
		if earlier[s.ID] || !stepID.MatchString(s.ID) {
			t.Fatalf("accepted step id %q (duplicate or malformed)", s.ID)
		}
		if !(s.DueMinutes > 0 && s.DueMinutes <= 7*24*60) {
			t.Fatalf("step %s: accepted due_minutes %v", s.ID, s.DueMinutes)
		}
		if strings.TrimSpace(s.Title.ZH) == "" || utf8.RuneCountInString(s.Title.ZH) > 40 || utf8.RuneCountInString(s.Instructions.ZH) > 200 ||
			utf8.RuneCountInString(s.Instructions.EN) > 200 {
			t.Fatalf("step %s: accepted title %+v, instructions %+v", s.ID, s.Title, s.Instructions)
		}
		for _, dep := range s.DependsOn {
			if !earlier[dep] {
				t.Fatalf("step %s depends on %q, which is not an earlier step", s.ID, dep)
			}
		}
		if s.ForEach != "" && s.ForEach != ForEachVulnerable {
			t.Fatalf("step %s: accepted for_each %q", s.ID, s.ForEach)
		}
		if !validAssigneeByDocs(tax, s.Assignee) {
			t.Fatalf("step %s: accepted assignee %q", s.ID, s.Assignee)
		}
		earlier[s.ID] = true
	}
}

func validAssigneeByDocs(tax *events.Taxonomy, a string) bool {
	for _, k := range responders.OrganisationKinds() {
		if a == k {
			return true
		}
	}
	for skill := range tax.Skills {
		if a == "skill:"+skill {
			return true
		}
	}
	return false
}

// yamlLines counts lines as YAML does: CR LF, CR, LF, NEL, LS and PS all
// end one, so a file saved with old Mac line ends has its lines too.
func yamlLines(src []byte) int {
	s := strings.ReplaceAll(string(src), "\r\n", "\n")
	return 1 + strings.Count(s, "\n") + strings.Count(s, "\r") + strings.Count(s, "\u0085") +
		strings.Count(s, "\u2028") + strings.Count(s, "\u2029")
}
