package responders_test

import (
	"testing"

	"github.com/shouwang/shouwang/responders"
)

func TestOrgOfKindAmongTakesTheFirstInScope(t *testing.T) {
	orgs := []responders.Organisation{
		{ID: "property", Kind: responders.OrgPropertyCompany},
		{ID: "team-a", Kind: "volunteer_team"},
		{ID: "team-b", Kind: "volunteer_team"},
	}
	for _, tc := range []struct {
		name        string
		kind        string
		scope       *responders.Scope
		want        string
		ok, inScope bool
	}{
		{"live: the first registered", "volunteer_team", nil, "team-a", true, true},
		{"drill: the first in scope", "volunteer_team", &responders.Scope{Teams: []string{"team-b"}}, "team-b", true, true},
		{"drill: by kind", responders.OrgPropertyCompany, &responders.Scope{Organisations: []string{responders.OrgPropertyCompany}},
			"property", true, true},
		{"drill: none of the kind in scope", "volunteer_team", &responders.Scope{Organisations: []string{"owners_committee"}},
			"team-a", true, false},
		{"no organisation of the kind", "owners_committee", nil, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, ok, inScope := responders.OrgOfKindAmong(orgs, tc.kind, tc.scope)
			if o.ID != tc.want || ok != tc.ok || inScope != tc.inScope {
				t.Errorf("got %q ok=%v inScope=%v, want %q ok=%v inScope=%v", o.ID, ok, inScope, tc.want, tc.ok, tc.inScope)
			}
		})
	}
}
