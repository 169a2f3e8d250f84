package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
)

// Poison messages on the alarms stream — one that is not JSON at all, one
// a well-formed event for an alarm type nobody knows — go to the dead
// letters, where admins see them and /metrics counts them, and the good
// alarm pressed right after still becomes an incident at once.
func TestScenarioPoisonAlarmsGoToDeadLetters(t *testing.T) {
	h := start(t, "sqlite", nil)
	h.community("c1")
	resident := h.token("resident", "c1", "r1")
	ctx := context.Background()
	before := deadLettered(h, "intake")

	subject := events.AlarmSubject("c1", "medical")
	garbage := events.Message{ID: "poison-garbage", Subject: subject, Data: []byte(`{"id": "al_x", "payload": `)}
	unknown, err := events.New("poison-unknown-type", "alarm", subject, "c1", time.Now(),
		map[string]any{"id": "al_poison", "community": "c1", "resident": "r1", "key": "p", "type": "no_such_type"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Bus.Publish(ctx, garbage); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Bus.PublishEvent(ctx, unknown); err != nil {
		t.Fatal(err)
	}
	pressed := time.Now()
	alarm := h.press(resident, "k-good", "medical", centre)
	h.incidentOf(resident, alarm)
	took := time.Since(pressed)
	if took > 5*time.Second {
		t.Errorf("the good alarm took %s to become an incident behind the poison", took)
	}

	// Admins see both, with where they came from and why they failed.
	var list []any
	eventually(t, 10*time.Second, func() bool {
		list = h.must(200, "GET", "/v1/admin/deadletters", testAdminToken, nil)["dead_letters"].([]any)
		return len(list) >= 2
	}, func() string { return fmt.Sprintf("dead letters %v, want the two poison messages", list) })
	why := map[string]string{}
	for _, d := range list {
		m := d.(map[string]any)
		if m["subject"] != subject || m["durable"] != "intake" {
			t.Errorf("dead letter %v: want subject %s, durable intake", m, subject)
		}
		why[m["data"].(string)] = m["error"].(string)
	}
	if e := why[string(garbage.Data)]; !strings.Contains(e, "decode") {
		t.Errorf("the garbage message's dead letter says %q, want a decode error", e)
	}
	found := false
	for data, e := range why {
		if strings.Contains(data, "no_such_type") {
			found = true
			if !strings.Contains(e, "unknown type") {
				t.Errorf("the unknown-type alarm's dead letter says %q", e)
			}
		}
	}
	if !found {
		t.Errorf("no dead letter for the unknown-type alarm: %v", why)
	}
	if st, _ := h.call("GET", "/v1/admin/deadletters", h.token("dispatcher", "c1", ""), nil); st != 403 {
		t.Errorf("a dispatcher reading dead letters: %d, want 403", st)
	}

	after := deadLettered(h, "intake")
	if after-before != 2 {
		t.Errorf("shouwang_dead_letters_total{durable=\"intake\"} went from %v to %v, want +2", before, after)
	}
	reportFault(t, faultRun{
		Fault: "poison messages", Store: "sqlite",
		Injected: "2 undecodable messages on the alarms subject (not JSON; an unknown alarm type), then a good alarm",
		Sent:     1, Accepted: 1,
		Note: fmt.Sprintf("both dead-lettered at once (permanent), listed for admins, counted in /metrics (+%v); the good alarm was an incident %s after its press",
			after-before, took.Round(10*time.Millisecond)),
	})
}

// deadLettered reads shouwang_dead_letters_total for a durable from /metrics.
func deadLettered(h *harness, durable string) float64 {
	m, ok := h.scrape().find("shouwang_dead_letters_total", map[string]string{"durable": durable})
	if !ok {
		return 0
	}
	return m.GetCounter().GetValue()
}
