package plans

import (
	"testing"
	"time"

	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/responders"
)

func TestComputeDrillReport(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	dr := Drill{ID: "dr_1", StartedAt: t0}
	in := incidents.Incident{ID: "in_1", Type: "fire", Status: incidents.StatusResolved}
	offers := []responders.Offer{
		{Responder: "a", Name: "甲", Wave: 1, Status: responders.OfferAccepted, CreatedAt: at(1), AnsweredAt: at(31), ArrivedAt: at(301)},
		{Responder: "b", Name: "乙", Wave: 1, Status: responders.OfferDeclined, CreatedAt: at(1), AnsweredAt: at(11)},
		{Responder: "c", Name: "丙", Wave: 1, Status: responders.OfferStoodDown, CreatedAt: at(1)},
		{Responder: "d", Name: "丁", Wave: 2, Status: responders.OfferAccepted, CreatedAt: at(61), AnsweredAt: at(81)},
		{Responder: "e", Name: "戊", Wave: 2, Status: responders.OfferFailed, CreatedAt: at(61)},
	}
	duties := []Duty{
		{ID: "d1", Assignee: "emergency_center", Status: DutyDone, DueAt: at(180), DoneAt: at(120)},
		{ID: "d2", Assignee: "property_company", Status: DutyOverdue, DueAt: at(300), DoneAt: at(400)},
		{ID: "d3", Assignee: "owners_committee", Status: DutyAssigned, DueAt: at(600)},
		{ID: "d4", Assignee: "police_office", Status: DutySkipped},
	}
	rep := ComputeDrillReport(dr, in, offers, duties, at(900))

	if rep.FirstAcceptS == nil || *rep.FirstAcceptS != 31 {
		t.Errorf("first accept = %v, want 31 s after the start", rep.FirstAcceptS)
	}
	if rep.AcceptRate != 0.4 {
		t.Errorf("accept rate = %v, want 2 of 5", rep.AcceptRate)
	}
	if len(rep.Waves) != 2 {
		t.Fatalf("waves = %+v", rep.Waves)
	}
	w1, w2 := rep.Waves[0], rep.Waves[1]
	if w1.Offered != 3 || w1.Accepted != 1 || w1.Declined != 1 || w1.NoAnswer != 1 {
		t.Errorf("wave 1 = %+v", w1)
	}
	if w2.Offered != 2 || w2.Accepted != 1 || w2.AcceptRate != 0.5 {
		t.Errorf("wave 2 = %+v", w2)
	}
	byID := map[string]ResponderStat{}
	for _, r := range rep.Responders {
		byID[r.Responder] = r
	}
	if a := byID["a"]; a.Outcome != "arrived" || *a.ReplyS != 30 || *a.ArriveS != 300 {
		t.Errorf("a = %+v", a)
	}
	if b := byID["b"]; b.Outcome != "declined" || *b.ReplyS != 10 {
		t.Errorf("b = %+v", b)
	}
	if c := byID["c"]; c.Outcome != "no_answer" || c.ReplyS != nil {
		t.Errorf("c = %+v", c)
	}
	if e := byID["e"]; e.Outcome != "failed" {
		t.Errorf("e = %+v", e)
	}
	if len(rep.NeverAnswered) != 1 || rep.NeverAnswered[0] != "丙" {
		t.Errorf("never answered = %v, want [丙] (a text that failed is not silence)", rep.NeverAnswered)
	}
	d := rep.Duties
	if d.Total != 4 || d.OnTime != 1 || d.Late != 1 || d.NotDone != 1 || d.Skipped != 1 {
		t.Errorf("duties = %+v", d)
	}
}

func TestDrillReportWithNobodyOffered(t *testing.T) {
	rep := ComputeDrillReport(Drill{ID: "dr"}, incidents.Incident{ID: "in"}, nil, nil, time.Now())
	if rep.FirstAcceptS != nil || rep.AcceptRate != 0 || len(rep.Waves) != 0 || rep.NeverAnswered == nil {
		t.Errorf("empty report = %+v", rep)
	}
}
