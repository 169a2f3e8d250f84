package responders_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// Amounts are yuan with at most two decimals, as a JSON number or string,
// and are never rounded.
func TestYuanToFen(t *testing.T) {
	for _, tc := range []struct {
		json string
		fen  responders.Fen
		bad  bool
	}{
		{`10000`, 1000000, false},
		{`"8500.5"`, 850050, false},
		{`8500.50`, 850050, false},
		{`0.1`, 10, false},
		{`0.29`, 29, false}, // 0.29 is 28.999… as a float64
		{`" 12.00 "`, 1200, false},
		{`0`, 0, false},
		{`100000000`, 10000000000, false},
		{`100000000.01`, 0, true},
		{`12.345`, 0, true},
		{`-5`, 0, true},
		{`1e4`, 0, true},
		{`"1,000"`, 0, true},
		{`"￥100"`, 0, true},
		{`true`, 0, true},
		{`{}`, 0, true},
		{`null`, 0, true},
		{`""`, 0, true},
	} {
		var in struct {
			Amount responders.Yuan `json:"amount"`
		}
		if err := json.Unmarshal([]byte(`{"amount":`+tc.json+`}`), &in); err != nil {
			t.Errorf("%s: decode: %v", tc.json, err)
			continue
		}
		got, err := in.Amount.Fen()
		if tc.bad != (err != nil) || got != tc.fen {
			t.Errorf("%s → %d, %v; want %d (bad %v)", tc.json, got, err, tc.fen, tc.bad)
		}
	}
	out, _ := json.Marshal(map[string]responders.Fen{"a": 850050, "b": 5, "c": -1250})
	if string(out) != `{"a":8500.50,"b":0.05,"c":-12.50}` {
		t.Errorf("amounts as JSON: %s", out)
	}
}

func FuzzYuan(f *testing.F) {
	for _, s := range []string{"10000", "8500.5", "0.01", "1e4", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fen, err := responders.Yuan(s).Fen()
		if err != nil {
			return
		}
		if fen < 0 || fen > responders.MaxFen {
			t.Fatalf("%q → %d: out of range", s, fen)
		}
		// What is accepted reads back as the same amount.
		if back, err := responders.Yuan(fen.String()).Fen(); err != nil || back != fen {
			t.Fatalf("%q → %d → %q → %d, %v", s, fen, fen.String(), back, err)
		}
	})
}

func newTraining(t *testing.T, db storage.DB) *responders.Training {
	t.Helper()
	bus, err := events.Connect(context.Background(), events.BusConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("embedded bus: %v", err)
	}
	t.Cleanup(bus.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &responders.Training{DB: db, Relay: events.NewRelay(db, bus, quiet), Log: quiet, Now: func() time.Time { return clock }}
}

// reminderTexts lists the reminder texts queued, oldest first.
func reminderTexts(t *testing.T, db storage.DB) []sms.Queued {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT id FROM sms_outbox WHERE purpose = $1 ORDER BY created_at, id`, responders.PurposeReminder)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	var out []sms.Queued
	for _, id := range ids {
		q, err := sms.Get(context.Background(), db, id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, q)
	}
	return out
}

// A team budgets 10,000 yuan; spending 8,500 texts the team lead and the
// center once about 80%, 10,200 once about 100%; the same entry sent twice
// counts once, and a different entry under a used id is a conflict.
func TestTrainingBudgetThresholds(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db storage.DB) {
		ctx := context.Background()
		reg := newRegistry(db)
		mustCommunity(t, reg, "xinhua")
		for _, o := range []responders.Organisation{
			{ID: "center", Community: "xinhua", Kind: responders.OrgEmergencyCenter, Name: "应急中心", DutyPhone: "+8613900000001"},
			{ID: "team1", Community: "xinhua", Kind: responders.OrgVolunteerTeam, Name: "志愿者服务队", DutyPhone: "+8613900000002"},
		} {
			if _, err := reg.CreateOrganisation(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		tr := newTraining(t, db)
		b, err := tr.SetBudget(ctx, "xinhua", "team1", 2026, responders.BudgetInput{Amount: "10000"}, "test")
		if err != nil || b.Budget != 1000000 || b.Spent != 0 || b.Percent == nil || *b.Percent != 0 {
			t.Fatalf("set budget: %+v, %v", b, err)
		}
		record := func(id, date, amount string) (responders.TrainingEntry, bool, error) {
			return tr.Record(ctx, "xinhua", "team1", responders.TrainingInput{ID: id, Course: "红十字救护员培训", Date: date,
				Amount: responders.Yuan(amount), Attendees: []string{"张三", "李四"}}, "test")
		}
		if _, created, err := record("first-aid-1", "2026-03-10", "5000"); err != nil || !created {
			t.Fatalf("first course: %v", err)
		}
		if n := len(reminderTexts(t, db)); n != 0 {
			t.Fatalf("%d texts at 50%%, want none", n)
		}
		if _, _, err := record("first-aid-2", "2026-05-10", "3500"); err != nil {
			t.Fatal(err)
		}
		texts := reminderTexts(t, db)
		if len(texts) != 2 || texts[0].Template != sms.TplBudget80 || texts[1].Template != sms.TplBudget80 {
			t.Fatalf("texts at 85%%: %+v, want the 80%% text to the lead and the center", texts)
		}
		to := map[string]bool{texts[0].To: true, texts[1].To: true}
		if !to["+8613900000001"] || !to["+8613900000002"] || !strings.Contains(texts[0].Body, "已用85%（8500.00/10000.00元），剩余1500.00元") {
			t.Fatalf("80%% texts %q to %v", texts[0].Body, to)
		}
		// Retried with the same id: one entry, no new text.
		e, created, err := record("first-aid-2", "2026-05-10", "3500")
		if err != nil || created || e.Amount != 350000 || e.AttendeeCount != 2 {
			t.Fatalf("retried entry: %+v created=%v %v", e, created, err)
		}
		if _, _, err := record("first-aid-2", "2026-05-10", "3600"); !errors.Is(err, errdefs.ErrConflict) {
			t.Fatalf("another entry under a used id: %v, want a conflict", err)
		}
		if _, _, err := record("cpr", "2026-06-01", "200"); err != nil { // 87%: nothing new
			t.Fatal(err)
		}
		if n := len(reminderTexts(t, db)); n != 2 {
			t.Fatalf("%d texts after more spend below 100%%, want still 2", n)
		}
		if _, _, err := record("aed", "2026-07-01", "1500"); err != nil { // 10,200: over
			t.Fatal(err)
		}
		texts = reminderTexts(t, db)
		var over []sms.Queued
		for _, q := range texts {
			if q.Template == sms.TplBudget100 {
				over = append(over, q)
			}
		}
		if len(texts) != 4 || len(over) != 2 || over[0].To == over[1].To || !strings.Contains(over[0].Body, "支出10200.00元，预算10000.00元") {
			t.Fatalf("texts after 102%%: %+v", texts)
		}
		b, err = tr.TeamBudget(ctx, "xinhua", "team1", 2026, true)
		if err != nil || b.Spent != 1020000 || b.Remaining != -20000 || *b.Percent != 102 || b.Courses != 4 || len(b.Entries) != 4 ||
			b.LastTraining != "2026-07-01" || b.Attendees != 8 {
			t.Fatalf("team budget %+v, %v", b, err)
		}
		// Spend in another year counts against that year's budget only.
		if _, _, err := record("", "2027-01-05", "100"); err != nil {
			t.Fatal(err)
		}
		if b, _ := tr.TeamBudget(ctx, "xinhua", "team1", 2026, false); b.Spent != 1020000 {
			t.Fatalf("2026 spend %s after a 2027 course", b.Spent)
		}
		// Raising the budget later sends nothing again for 100%; bad input names the field.
		if _, err := tr.SetBudget(ctx, "xinhua", "team1", 2026, responders.BudgetInput{Amount: "12000.5"}, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.SetBudget(ctx, "xinhua", "team1", 2026, responders.BudgetInput{Amount: "12.345"}, "test"); err == nil {
			t.Fatal("a budget with three decimals was accepted")
		} else {
			wantInvalid(t, err, "amount")
		}
		_, _, err = tr.Record(ctx, "xinhua", "team1", responders.TrainingInput{Course: "", Date: "2026-13-01", Amount: "x"}, "test")
		for _, field := range []string{"course", "date", "amount", "attendee_count"} {
			wantInvalid(t, err, field)
		}
		if _, _, err := record("", "2026-02-01", "1"); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.SetBudget(ctx, "xinhua", "nobody", 2026, responders.BudgetInput{Amount: "1"}, "test"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("budget of a team that does not exist: %v", err)
		}
	})
}
