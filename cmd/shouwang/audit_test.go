package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Who changed what: a dispatcher registers a responder and corrects their
// number, an admin posts a plan and mints a token, the dispatcher resolves
// an incident → the community's audit log tells it in order, with the
// actor, the object and the time; it holds no token and no full number; a
// refused change left no entry; the database refuses to rewrite or erase
// the log.
func TestAuditLog(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		h := start(t, store, nil)
		ctx := context.Background()
		h.community("c1")
		h.community("c2")
		dispatcher := h.token("dispatcher", "c1", "d1")
		reporter := h.token("resident", "c1", "res-1")

		h.must(201, "POST", "/v1/communities/c1/responders", dispatcher, map[string]any{
			"id": "r1", "name": "王芳", "phone": "+8613800000301", "skills": []string{}, "location": centre})
		h.must(200, "PATCH", "/v1/communities/c1/responders/r1", dispatcher, map[string]any{"phone": "+8613800000302"})
		// Refused: nothing changes, so nothing is recorded.
		h.must(422, "PATCH", "/v1/communities/c1/responders/r1", dispatcher, map[string]any{"phone": "12345"})
		if st, out := h.postPlan(testAdminToken, gasPlanC1); st != 201 {
			t.Fatalf("post plan: %d %v", st, out)
		}
		minted := h.token("responder", "c1", "r1")
		incident := h.incidentOf(reporter, h.press(reporter, "k1", "fire", centre))
		h.must(200, "POST", "/v1/incidents/"+incident+"/resolve", dispatcher, nil)

		log := h.must(200, "GET", "/v1/audit?community=c1", dispatcher, nil)
		var got []string
		var last time.Time
		for _, v := range log["entries"].([]any) {
			e := v.(map[string]any)
			at, err := time.Parse(time.RFC3339Nano, e["at"].(string))
			if err != nil {
				t.Fatalf("entry %v: at: %v", e, err)
			}
			if at.Before(last) {
				t.Errorf("entry %v is older than the one before it", e)
			}
			last = at
			switch e["action"] {
			case "responder.create", "responder.update", "plan.create", "incident.resolve":
				got = append(got, e["actor"].(string)+" "+e["action"].(string)+" "+e["object_kind"].(string)+":"+e["object_id"].(string))
			case "token.create":
				if d := e["detail"].(map[string]any); d["role"] == "responder" {
					got = append(got, e["actor"].(string)+" token.create "+d["subject"].(string))
				}
			}
		}
		want := []string{
			"dispatcher:c1:d1 responder.create responder:r1",
			"dispatcher:c1:d1 responder.update responder:r1",
			"admin::bootstrap plan.create plan:gas-leak-c1",
			"admin::bootstrap token.create r1",
			"dispatcher:c1:d1 incident.resolve incident:" + incident,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("audit log of c1 reads\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// Another community's dispatcher sees none of it.
		other := h.token("dispatcher", "c2", "")
		for _, v := range h.must(200, "GET", "/v1/audit", other, nil)["entries"].([]any) {
			if e := v.(map[string]any); e["community"] != "c2" {
				t.Errorf("a c2 dispatcher reads %v", e)
			}
		}
		h.must(404, "GET", "/v1/audit?community=c1", other, nil)

		// No secret and no full number anywhere in the table.
		rows, err := h.svc.DB.Query(ctx, `SELECT actor || ' ' || object_id || ' ' || detail FROM audit_log`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			n++
			for _, secret := range []string{minted, dispatcher, testAdminToken, "+8613800000301", "+8613800000302"} {
				if strings.Contains(line, secret) {
					t.Errorf("audit entry %q holds a secret or a full phone number", line)
				}
			}
		}
		rows.Close()
		if n == 0 {
			t.Fatal("audit table is empty")
		}

		for _, sql := range []string{`UPDATE audit_log SET actor = 'nobody'`, `DELETE FROM audit_log`} {
			if _, err := h.svc.DB.Exec(ctx, sql); err == nil {
				t.Errorf("%s: the database accepted it", sql)
			}
		}
		if after := h.must(200, "GET", "/v1/audit?community=c1", testAdminToken, nil)["entries"].([]any); len(after) != len(log["entries"].([]any)) {
			t.Errorf("audit log of c1 has %d entries after refused statements, had %d", len(after), len(log["entries"].([]any)))
		}
	})
}
