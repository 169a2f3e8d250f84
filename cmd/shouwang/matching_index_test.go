package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The match index fills waves without SQL, and being a cache it never
// decides alone: a medic who went off call behind its back (another
// replica's write whose announcement was lost) is not offered.
func TestScenarioMatchingFromTheIndexNeverOffersWhomTheDatabaseRefuses(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		index := h.svc.Dispatcher.Index
		eventually(t, 10*time.Second, index.Loaded, says("the match index never finished loading"))
		h.community("c1")
		for i := range 6 {
			h.responder("c1", person{fmt.Sprintf("medic%d", i), fmt.Sprintf("+86138000007%02d", i), []string{"medic"},
				float64(50 * (i + 1)), true, true})
		}
		eventually(t, 10*time.Second, func() bool { return index.Len() == 6 }, func() string {
			return fmt.Sprintf("the index holds %d of 6 medics", index.Len())
		})
		// The nearest goes off call straight in the database: the index
		// still believes in them.
		if _, err := h.svc.DB.Exec(context.Background(), `UPDATE responders SET available = false WHERE id = 'medic0'`); err != nil {
			t.Fatal(err)
		}
		filledBefore, _ := index.Waves()

		resident := h.token("resident", "c1", "resident-701")
		incident := h.incidentOf(resident, h.press(resident, "press-index-1", "medical", centre))
		// A medical wave asks 3: the nearest three still taking calls.
		for _, phone := range []string{"+8613800000701", "+8613800000702", "+8613800000703"} {
			h.waitTexts(phone, 1, "回复 1 接受")
		}
		offers := offersByResponder(h.incident(h.token("dispatcher", "c1", ""), incident))
		if len(offers) != 3 || offers["medic0"] != "" || offers["medic4"] != "" {
			t.Fatalf("offers %v: want medic1–3, and never medic0 who is off call", offers)
		}
		if filled, _ := index.Waves(); filled <= filledBefore {
			t.Fatalf("the wave was not filled from the match index (filled %d before, %d after)", filledBefore, filled)
		}
	})
}
