package events_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/shouwang/shouwang/events"
)

// The shipped taxonomy alerts the public about area-wide hazards only: a
// call about one person or one flat stays with the community.
func TestShippedTaxonomyPublicTypes(t *testing.T) {
	tax := events.DefaultTaxonomy()
	if got, want := tax.PublicTypes(), []string{"epidemic", "fire", "flood", "gas_leak", "suspicious_object"}; !slices.Equal(got, want) {
		t.Errorf("public types %v, want %v", got, want)
	}
	flood, _ := tax.Type("flood")
	if c := flood.CAP; c.Category != "Met" || c.Event.ZH == "" || c.Instruction.EN == "" || c.AreaRadiusM < events.MinPublicAreaRadiusM {
		t.Errorf("flood's CAP config: %+v", c)
	}
	medical, _ := tax.Type("medical")
	if medical.CAP.Public || medical.CAP.Category != "Health" || medical.CAP.Event != medical.Label {
		t.Errorf("medical's CAP config: %+v", medical.CAP)
	}
}

// A wrong cap block stops the taxonomy from loading, and the message says
// which type and which field.
func TestTaxonomyRejectsBadCAPConfig(t *testing.T) {
	const head = `
categories: {natural_disaster: {zh: 自然灾害, en: Natural disaster}}
skills: {general: {zh: 志愿服务, en: General volunteer}}
types:
  other:
    zh: 求助
    en: Help
    category: natural_disaster
    severity: IV
    skills: [general]
    correlation: {radius_m: 50, window: 15m}
    dispatch: {accept_needed: 1, wave_size: 3, waves: 3, radius_m: 500, radius_growth: 2}
`
	const good = `public: true, category: Met, urgency: Immediate, certainty: Observed, response_type: [Avoid], area_radius_m: 500, instruction: {zh: 远离, en: Keep away}`
	if _, err := events.ParseTaxonomy([]byte(head + "    cap: {" + good + "}\n")); err != nil {
		t.Fatalf("a good cap block was refused: %v", err)
	}
	for _, tc := range []struct {
		name, cap, want string
	}{
		{"missing", "", "cap: missing"},
		{"unknown category", "{public: false, category: Weather, urgency: Immediate, certainty: Observed, area_radius_m: 100}", `category "Weather"`},
		{"unknown urgency", "{public: false, category: Met, urgency: Soon, certainty: Observed, area_radius_m: 100}", `urgency "Soon"`},
		{"unknown certainty", "{public: false, category: Met, urgency: Immediate, certainty: Sure, area_radius_m: 100}", `certainty "Sure"`},
		{"unknown response", "{public: false, category: Met, urgency: Immediate, certainty: Observed, response_type: [Run], area_radius_m: 100}", `response_type "Run"`},
		{"all clear is not an alert's", "{public: false, category: Met, urgency: Immediate, certainty: Observed, response_type: [AllClear], area_radius_m: 100}", `response_type "AllClear"`},
		{"no area", "{public: false, category: Met, urgency: Immediate, certainty: Observed}", "area_radius_m"},
		{"public area too small", "{" + strings.Replace(good, "area_radius_m: 500", "area_radius_m: 50", 1) + "}", "at least 200 m"},
		{"public without instruction", "{" + strings.Replace(good, ", instruction: {zh: 远离, en: Keep away}", "", 1) + "}", "instruction"},
		{"public without response", "{" + strings.Replace(good, "response_type: [Avoid], ", "", 1) + "}", "response_type: a public type"},
		{"event in one language", "{public: false, category: Met, urgency: Immediate, certainty: Observed, area_radius_m: 100, event: {zh: 水浸}}", "event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := head
			if tc.cap != "" {
				doc += "    cap: " + tc.cap + "\n"
			}
			_, err := events.ParseTaxonomy([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), "taxonomy type other") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one about type other naming %q", err, tc.want)
			}
		})
	}
}
