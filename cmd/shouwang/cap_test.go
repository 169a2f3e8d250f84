package main

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/shouwang/shouwang/cap/captest"
	"github.com/shouwang/shouwang/geo"
)

// capFeed is an Atom feed as a platform reads it.
type capFeed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string   `xml:"id"`
	Title   string   `xml:"title"`
	Updated string   `xml:"updated"`
	Entries []struct {
		ID      string `xml:"id"`
		Title   string `xml:"title"`
		Updated string `xml:"updated"`
		Link    struct {
			Type string `xml:"type,attr"`
			Href string `xml:"href,attr"`
		} `xml:"link"`
	} `xml:"entry"`
}

// capAlert is the part of a CAP document the scenario looks at.
type capAlert struct {
	Identifier string `xml:"identifier"`
	Sender     string `xml:"sender"`
	Status     string `xml:"status"`
	MsgType    string `xml:"msgType"`
	Scope      string `xml:"scope"`
	References string `xml:"references"`
	Info       []struct {
		Language     string   `xml:"language"`
		ResponseType []string `xml:"responseType"`
		Headline     string   `xml:"headline"`
		Area         struct {
			AreaDesc string `xml:"areaDesc"`
		} `xml:"area"`
	} `xml:"info"`
}

// get fetches path with an optional token and returns the status, the
// content type and the body.
func (h *harness) get(path, token string) (int, string, []byte) {
	h.t.Helper()
	header := map[string]string{}
	if token != "" {
		header["Authorization"] = "Bearer " + token
	}
	resp, body := h.request("GET", path, header, nil)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func (h *harness) capFeed(query string) capFeed {
	h.t.Helper()
	status, ctype, body := h.get("/v1/cap/feed"+query, "")
	if status != http.StatusOK || !strings.HasPrefix(ctype, "application/atom+xml") {
		h.t.Fatalf("GET /v1/cap/feed%s without a token: %d %s: %s", query, status, ctype, body)
	}
	var f capFeed
	if err := xml.Unmarshal(body, &f); err != nil {
		h.t.Fatalf("the feed is not Atom: %v\n%s", err, body)
	}
	if f.ID == "" || f.Title == "" || f.Updated == "" {
		h.t.Fatalf("feed lacks id, title or updated:\n%s", body)
	}
	if strings.Contains(string(body), "3栋2单元501") {
		h.t.Fatalf("the public feed names the flat:\n%s", body)
	}
	return f
}

// capDoc fetches an incident's CAP document, checks it against the OASIS
// schema and decodes it.
func (h *harness) capDoc(incident, token string) capAlert {
	h.t.Helper()
	status, ctype, body := h.get("/v1/incidents/"+incident+"/cap", token)
	if status != http.StatusOK || !strings.HasPrefix(ctype, "application/cap+xml") {
		h.t.Fatalf("GET /v1/incidents/%s/cap: %d %s: %s", incident, status, ctype, body)
	}
	captest.Validate(h.t, body)
	if strings.Contains(string(body), "3栋2单元501") {
		h.t.Fatalf("the CAP document names the flat:\n%s", body)
	}
	var a capAlert
	if err := xml.Unmarshal(body, &a); err != nil {
		h.t.Fatal(err)
	}
	return a
}

func feedLinks(f capFeed) map[string]string {
	out := map[string]string{}
	for _, e := range f.Entries {
		out[e.Link.Href] = e.Link.Type
	}
	return out
}

// resident presses flood → the anonymous Atom feed lists a CAP alert for
// it, whose document validates against the OASIS schema → a medical call
// stays out of the feed and its CAP is the community's dispatchers' alone
// → the dispatcher resolves the flood → the feed carries the all-clear.
func TestCAPFeedForPublicIncidents(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		h.community("c1")
		h.community("c2")
		resident := h.token("resident", "c1", "res-1")
		neighbour := h.token("resident", "c2", "res-9")
		dispatcher := h.token("dispatcher", "c1", "")
		flood := h.incidentOf(resident, h.press(resident, "flood-1", "flood", centre))
		medical := h.incidentOf(resident, h.press(resident, "medical-1", "medical", geo.Offset(centre, 300, 0)))
		floodC2 := h.incidentOf(neighbour, h.press(neighbour, "flood-2", "flood", geo.Offset(centre, 3000, 0)))

		floodCAP := testPublicURL + "/v1/incidents/" + flood + "/cap"
		links := feedLinks(h.capFeed(""))
		if links[floodCAP] != "application/cap+xml" {
			t.Fatalf("feed has no CAP link for the flood %s: %v", flood, links)
		}
		if _, ok := links[testPublicURL+"/v1/incidents/"+floodC2+"/cap"]; !ok {
			t.Errorf("feed lacks c2's flood: %v", links)
		}
		for href := range links {
			if strings.Contains(href, medical) {
				t.Errorf("a medical call is in the public feed: %s", href)
			}
		}
		only := feedLinks(h.capFeed("?community=c1"))
		if _, ok := only[floodCAP]; !ok || len(only) != 1 {
			t.Errorf("feed for c1: %v, want only its flood", only)
		}
		if status, _, _ := h.get("/v1/cap/feed?community=nowhere", ""); status != http.StatusNotFound {
			t.Errorf("feed for an unknown community: %d, want 404", status)
		}

		alert := h.capDoc(flood, "")
		if alert.MsgType != "Alert" || alert.Status != "Actual" || alert.Scope != "Public" || alert.Sender != "shouwang.example.org" {
			t.Errorf("flood alert: %+v", alert)
		}
		if len(alert.Info) != 2 || alert.Info[0].Language != "zh-CN" || alert.Info[1].Language != "en-US" ||
			!strings.Contains(alert.Info[0].Area.AreaDesc, "测试社区") {
			t.Errorf("flood alert info: %+v", alert.Info)
		}

		// The medical call is nobody's business but the community's.
		for who, token := range map[string]string{"anonymous": "", "the resident who called": resident,
			"another community's resident": neighbour, "another community's dispatcher": h.token("dispatcher", "c2", "")} {
			if status, _, body := h.get("/v1/incidents/"+medical+"/cap", token); status != http.StatusNotFound {
				t.Errorf("medical CAP as %s: %d, want 404: %s", who, status, body)
			}
		}
		if restricted := h.capDoc(medical, dispatcher); restricted.Scope != "Restricted" {
			t.Errorf("medical CAP for the dispatcher: scope %s, want Restricted", restricted.Scope)
		}
		h.capDoc(medical, testAdminToken)
		if status, _, _ := h.get("/v1/incidents/"+flood+"/cap", "sw_not-a-token"); status != http.StatusUnauthorized {
			t.Errorf("a bad token: %d, want 401", status)
		}
		if status, _, _ := h.get("/v1/incidents/in_nosuchthing/cap", ""); status != http.StatusNotFound {
			t.Errorf("an unknown incident: %d, want 404", status)
		}

		h.must(200, "POST", "/v1/incidents/"+flood+"/resolve", dispatcher, nil)
		allClear := h.capDoc(flood, "")
		if allClear.MsgType != "Update" || allClear.Identifier != alert.Identifier+"-allclear" ||
			!strings.HasPrefix(allClear.References, "shouwang.example.org,"+alert.Identifier+",") {
			t.Errorf("after resolving: %+v, want an Update referring to %s", allClear, alert.Identifier)
		}
		if len(allClear.Info) == 0 || len(allClear.Info[0].ResponseType) != 1 || allClear.Info[0].ResponseType[0] != "AllClear" {
			t.Errorf("after resolving: info %+v, want responseType AllClear", allClear.Info)
		}
		f := h.capFeed("?community=c1")
		if len(f.Entries) != 1 || !strings.Contains(f.Entries[0].ID, allClear.Identifier) || !strings.Contains(f.Entries[0].Title, "警报解除") {
			t.Errorf("feed after resolving: %+v, want the flood's all-clear", f.Entries)
		}
	})
}

// A sender CAP would refuse is refused at start, not in every alert.
func TestCAPSenderFlag(t *testing.T) {
	if _, err := parseConfig("serve", []string{"--cap-sender", "shouwang, district"}); err == nil {
		t.Error("a sender with a comma was accepted")
	}
	c, err := parseConfig("serve", []string{"--cap-sender", "alerts.xinhua.example.cn"})
	if err != nil || c.CAPSender != "alerts.xinhua.example.cn" {
		t.Errorf("sender %q, %v", c.CAPSender, err)
	}
}
