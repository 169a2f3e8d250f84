package cap_test

import (
	"bytes"
	"encoding/xml"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/cap"
	"github.com/shouwang/shouwang/cap/captest"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/geo"
	"github.com/shouwang/shouwang/incidents"
)

const sender = "shouwang.example.org"

var (
	tax       = events.DefaultTaxonomy()
	opened    = time.Date(2026, 11, 22, 7, 4, 5, 0, time.UTC) // 15:04:05 in Shanghai
	closed    = opened.Add(2 * time.Hour)
	community = cap.Community{Name: "新华社区", NameEN: "Xinhua Community"}
)

func incident(typ string, status incidents.Status) incidents.Incident {
	it, _ := tax.Type(typ)
	in := incidents.Incident{ID: "in_ABC123", Community: "xinhua", Type: typ, Category: it.Category, Severity: it.Severity,
		Status: status, Location: geo.Point{Lat: 31.2304, Lng: 121.4737}, Address: "3栋2单元501", Reports: 3,
		OpenedAt: opened, LastReportAt: opened.Add(time.Minute)}
	if !status.Active() {
		in.ClosedAt = closed
	}
	return in
}

func build(t *testing.T, in incidents.Incident) (cap.Alert, []byte) {
	t.Helper()
	it, ok := tax.Type(in.Type)
	if !ok {
		t.Fatalf("no type %s", in.Type)
	}
	a := cap.Build(in, it, community, sender)
	doc, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	captest.Validate(t, doc)
	return a, doc
}

// An incident's lifecycle as the public sees it: an alert while it is
// active, an all-clear when resolved, a cancel when withdrawn; drills
// are exercises; types about one person are restricted.
func TestBuildFollowsTheIncident(t *testing.T) {
	drill := incident("flood", incidents.StatusOpen)
	drill.Drill = true
	for _, tc := range []struct {
		name       string
		in         incidents.Incident
		id         string
		status     string
		msgType    string
		scope      string
		sent       string
		references string
		response   []string
		urgency    string
		headlineZH string
		headlineEN string
	}{
		{"flood open", incident("flood", incidents.StatusOpen), "shouwang-in_ABC123", "Actual", "Alert", "Public",
			"2026-11-22T15:04:05+08:00", "", []string{"Avoid", "Prepare"}, "Immediate", "新华社区：内涝水浸", "Flooding: Xinhua Community"},
		{"flood with responders", incident("flood", incidents.StatusResponding), "shouwang-in_ABC123", "Actual", "Alert", "Public",
			"2026-11-22T15:04:05+08:00", "", []string{"Avoid", "Prepare"}, "Immediate", "新华社区：内涝水浸", "Flooding: Xinhua Community"},
		{"flood resolved", incident("flood", incidents.StatusResolved), "shouwang-in_ABC123-allclear", "Actual", "Update", "Public",
			"2026-11-22T17:04:05+08:00", sender + ",shouwang-in_ABC123,2026-11-22T15:04:05+08:00", []string{"AllClear"}, "Past",
			"新华社区：内涝水浸警报解除", "All clear: flooding in Xinhua Community"},
		{"gas leak withdrawn", incident("gas_leak", incidents.StatusCancelled), "shouwang-in_ABC123-cancel", "Actual", "Cancel", "Public",
			"2026-11-22T17:04:05+08:00", sender + ",shouwang-in_ABC123,2026-11-22T15:04:05+08:00", []string{"None"}, "Past",
			"新华社区：燃气泄漏警报撤销", "Withdrawn: gas leak alert for Xinhua Community"},
		{"flood drill", drill, "shouwang-in_ABC123", "Exercise", "Alert", "Public",
			"2026-11-22T15:04:05+08:00", "", []string{"Avoid", "Prepare"}, "Immediate", "【演练】新华社区：内涝水浸", "[DRILL] Flooding: Xinhua Community"},
		{"medical is not public", incident("medical", incidents.StatusOpen), "shouwang-in_ABC123", "Actual", "Alert", "Restricted",
			"2026-11-22T15:04:05+08:00", "", nil, "Immediate", "新华社区：急救", "Medical emergency: Xinhua Community"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := build(t, tc.in)
			got := []string{a.Identifier, a.Sender, a.Status, a.MsgType, a.Scope, a.Sent, a.References, a.Incidents}
			want := []string{tc.id, sender, tc.status, tc.msgType, tc.scope, tc.sent, tc.references, "in_ABC123"}
			if !slices.Equal(got, want) {
				t.Errorf("identifier, sender, status, msgType, scope, sent, references, incidents:\n got  %q\n want %q", got, want)
			}
			if tc.scope == "Restricted" && a.Restriction == "" {
				t.Error("a restricted alert must say who it is for")
			}
			if len(a.Info) != 2 || a.Info[0].Language != "zh-CN" || a.Info[1].Language != "en-US" {
				t.Fatalf("want zh-CN then en-US info blocks, got %+v", a.Info)
			}
			for _, inf := range a.Info {
				if !slices.Equal(inf.ResponseType, tc.response) || inf.Urgency != tc.urgency {
					t.Errorf("%s: responseType %v urgency %s, want %v %s", inf.Language, inf.ResponseType, inf.Urgency, tc.response, tc.urgency)
				}
			}
			if a.Info[0].Headline != tc.headlineZH || a.Info[1].Headline != tc.headlineEN {
				t.Errorf("headlines %q / %q, want %q / %q", a.Info[0].Headline, a.Info[1].Headline, tc.headlineZH, tc.headlineEN)
			}
			if (tc.status == "Exercise") != (a.Note != "") {
				t.Errorf("note %q: a drill says so, a real alert has no note", a.Note)
			}
		})
	}
}

// The same state gives the same message: a platform polling twice must
// not see two alerts.
func TestBuildIsStable(t *testing.T) {
	_, first := build(t, incident("flood", incidents.StatusOpen))
	later := incident("flood", incidents.StatusResponding)
	later.Reports, later.LastReportAt = 40, opened.Add(time.Hour)
	_, second := build(t, later)
	if !bytes.Equal(first, second) {
		t.Errorf("more reports changed the alert:\n%s\n%s", first, second)
	}
}

func TestSeverityLevels(t *testing.T) {
	for sev, want := range map[events.Severity]string{1: "Extreme", 2: "Severe", 3: "Moderate", 4: "Minor"} {
		in := incident("flood", incidents.StatusOpen)
		in.Severity = sev
		a, _ := build(t, in)
		for _, inf := range a.Info {
			if inf.Severity != want {
				t.Errorf("level %s: severity %s, want %s", sev.Label(), inf.Severity, want)
			}
		}
	}
}

// CAP is public: the flat, the people and their words stay out, and the
// area does not point at the building.
func TestBuildLeavesPersonalDataOut(t *testing.T) {
	in := incident("flood", incidents.StatusOpen)
	a, doc := build(t, in)
	for _, secret := range []string{in.Address, "3栋", "501", "31.2304", "121.4737"} {
		if bytes.Contains(doc, []byte(secret)) {
			t.Errorf("the CAP document contains %q:\n%s", secret, doc)
		}
	}
	area := a.Info[0].Area[0]
	// 800 m configured, +100 m for the rounded centre.
	if want := []string{"31.230,121.474 0.9"}; !slices.Equal(area.Circle, want) {
		t.Errorf("circle %q, want %q", area.Circle, want)
	}
	if area.AreaDesc != "新华社区及周边约0.9公里" || a.Info[1].Area[0].AreaDesc != "Xinhua Community and about 0.9 km around" {
		t.Errorf("area descriptions %q / %q", area.AreaDesc, a.Info[1].Area[0].AreaDesc)
	}
}

// Without an English name the Chinese one is used in both blocks.
func TestBuildWithoutEnglishName(t *testing.T) {
	it, _ := tax.Type("flood")
	a := cap.Build(incident("flood", incidents.StatusOpen), it, cap.Community{Name: "新华社区"}, sender)
	if got := a.Info[1].Headline; got != "Flooding: 新华社区" {
		t.Errorf("English headline %q", got)
	}
}

// The Go check is only worth having if it refuses what xmllint refuses:
// each broken document must fail both.
func TestSchemaCheckRejectsBrokenAlerts(t *testing.T) {
	_, doc := build(t, incident("flood", incidents.StatusResolved))
	valid := string(doc)
	for _, tc := range []struct {
		name, from, to string
	}{
		{"no sender", "<sender>" + sender + "</sender>", ""},
		{"status and msgType swapped", "<status>Actual</status>\n  <msgType>Update</msgType>", "<msgType>Update</msgType>\n  <status>Actual</status>"},
		{"unknown status", "<status>Actual</status>", "<status>Real</status>"},
		{"sent in UTC with Z", "<sent>2026-11-22T17:04:05+08:00</sent>", "<sent>2026-11-22T09:04:05Z</sent>"},
		{"sent with a fraction", "<sent>2026-11-22T17:04:05+08:00</sent>", "<sent>2026-11-22T17:04:05.5+08:00</sent>"},
		{"not a date", "<sent>2026-11-22T17:04:05+08:00</sent>", "<sent>2026-13-45T17:04:05+08:00</sent>"},
		{"info without category", "<category>Met</category>", ""},
		{"unknown category", "<category>Met</category>", "<category>Weather</category>"},
		{"unknown urgency", "<urgency>Past</urgency>", "<urgency>Soon</urgency>"},
		{"element CAP does not have", "<scope>Public</scope>", "<scope>Public</scope><priority>1</priority>"},
		{"area without areaDesc", "<areaDesc>新华社区及周边约0.9公里</areaDesc>", ""},
		{"wrong namespace", cap.Namespace, "urn:oasis:names:tc:emergency:cap:1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(valid, tc.from) {
				t.Fatalf("the valid document has no %q:\n%s", tc.from, valid)
			}
			broken := []byte(strings.Replace(valid, tc.from, tc.to, 1))
			if errs := captest.SchemaErrors(broken); len(errs) == 0 {
				t.Errorf("the Go check accepted it:\n%s", broken)
			}
			if ran, err := captest.Xmllint(t, broken); ran && err == nil {
				t.Errorf("xmllint accepted it:\n%s", broken)
			}
		})
	}
}

// Rules of the specification the schema cannot state are checked too.
func TestSpecCheckRejectsBrokenAlerts(t *testing.T) {
	_, doc := build(t, incident("medical", incidents.StatusResolved))
	valid := string(doc)
	for _, tc := range []struct {
		name, from, to string
	}{
		{"identifier with a space", "<identifier>shouwang-in_ABC123-allclear", "<identifier>shouwang in_ABC123-allclear"},
		{"sender with a comma", "<sender>" + sender, "<sender>a," + sender},
		{"update without references", "<references>" + sender + ",shouwang-in_ABC123,2026-11-22T15:04:05+08:00</references>", ""},
		{"reference without its time", ",shouwang-in_ABC123,2026-11-22T15:04:05+08:00</references>", ",shouwang-in_ABC123</references>"},
		{"restricted without a restriction", "<restriction>", "<note>"},
		{"circle off the globe", "<circle>31.230,121.474", "<circle>131.230,121.474"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(valid, tc.from) {
				t.Fatalf("the valid document has no %q:\n%s", tc.from, valid)
			}
			broken := strings.Replace(valid, tc.from, tc.to, 1)
			if tc.to == "<note>" {
				broken = strings.Replace(broken, "</restriction>", "</note>", 1)
			}
			if errs := captest.SpecErrors([]byte(broken)); len(errs) == 0 {
				t.Errorf("accepted:\n%s", broken)
			}
		})
	}
}

// The taxonomy loader checks cap blocks against these lists; they must be
// the schema's.
func TestTaxonomyCodeListsAreTheSchemas(t *testing.T) {
	for path, ours := range map[string][]string{
		"alert/info/category":     events.CAPCategories,
		"alert/info/urgency":      events.CAPUrgencies,
		"alert/info/certainty":    events.CAPCertainties,
		"alert/info/responseType": events.CAPResponseTypes,
	} {
		if xsd := captest.Enumerations(path); !slices.Equal(ours, xsd) {
			t.Errorf("%s: events has %v, the XSD %v", path, ours, xsd)
		}
	}
}

type atomFeed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string   `xml:"id"`
	Title   string   `xml:"title"`
	Updated string   `xml:"updated"`
	Author  []struct {
		Name string `xml:"name"`
	} `xml:"author"`
	Links []struct {
		Rel  string `xml:"rel,attr"`
		Type string `xml:"type,attr"`
		Href string `xml:"href,attr"`
	} `xml:"link"`
	Entries []struct {
		ID      string `xml:"id"`
		Title   string `xml:"title"`
		Updated string `xml:"updated"`
		Summary string `xml:"summary"`
		Links   []struct {
			Rel  string `xml:"rel,attr"`
			Type string `xml:"type,attr"`
			Href string `xml:"href,attr"`
		} `xml:"link"`
		Content struct {
			Type string `xml:"type,attr"`
			Src  string `xml:"src,attr"`
		} `xml:"content"`
	} `xml:"entry"`
}

// The feed lists the latest message first, each entry pointing at its
// CAP document, with what RFC 4287 requires of a feed and an entry.
func TestFeed(t *testing.T) {
	older := incident("flood", incidents.StatusResolved) // sent at closing, 17:04
	newer := incident("gas_leak", incidents.StatusOpen)
	newer.ID, newer.OpenedAt = "in_NEWER", closed.Add(time.Hour) // 18:04
	var entries []cap.FeedEntry
	for _, in := range []incidents.Incident{older, newer} {
		it, _ := tax.Type(in.Type)
		entries = append(entries, cap.FeedEntry{Alert: cap.Build(in, it, community, sender),
			URL: "https://shouwang.example.org/v1/incidents/" + in.ID + "/cap"})
	}
	now := closed.Add(90 * time.Minute)
	doc, err := cap.Feed("守望社区预警", "https://shouwang.example.org/v1/cap/feed", entries, now)
	if err != nil {
		t.Fatal(err)
	}
	var f atomFeed
	if err := xml.Unmarshal(doc, &f); err != nil {
		t.Fatalf("not an Atom feed: %v\n%s", err, doc)
	}
	if f.ID != "https://shouwang.example.org/v1/cap/feed" || f.Title == "" || len(f.Author) != 1 || f.Author[0].Name == "" {
		t.Errorf("feed id %q title %q authors %v", f.ID, f.Title, f.Author)
	}
	if f.Updated != "2026-11-22T18:04:05+08:00" {
		t.Errorf("feed updated %q, want the latest message's time", f.Updated)
	}
	if len(f.Links) != 1 || f.Links[0].Rel != "self" || f.Links[0].Href != f.ID {
		t.Errorf("self link %+v", f.Links)
	}
	if len(f.Entries) != 2 {
		t.Fatalf("%d entries, want 2:\n%s", len(f.Entries), doc)
	}
	first, second := f.Entries[0], f.Entries[1]
	if !strings.HasSuffix(first.Content.Src, "/in_NEWER/cap") || !strings.Contains(second.ID, "shouwang-in_ABC123-allclear") {
		t.Errorf("want the gas leak first, then the flood's all-clear; got %q, %q", first.Content.Src, second.ID)
	}
	for _, e := range f.Entries {
		if e.ID == "" || e.Title == "" || e.Updated == "" || e.Summary == "" {
			t.Errorf("entry lacks id, title, updated or summary: %+v", e)
		}
		if e.Content.Type != cap.ContentType || len(e.Links) != 1 || e.Links[0].Type != cap.ContentType || e.Links[0].Href != e.Content.Src {
			t.Errorf("entry does not point at its CAP document: %+v", e)
		}
	}
	if !strings.Contains(second.Title, "警报解除") || !strings.Contains(second.Title, "All clear") {
		t.Errorf("all-clear entry title %q", second.Title)
	}

	empty, err := cap.Feed("守望社区预警", "https://shouwang.example.org/v1/cap/feed", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	f = atomFeed{}
	if err := xml.Unmarshal(empty, &f); err != nil || f.Updated != "2026-11-22T18:34:05+08:00" || len(f.Entries) != 0 {
		t.Errorf("empty feed: %v, updated %q, %d entries", err, f.Updated, len(f.Entries))
	}
}
