package responders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// Fen is an amount of money in fen (分, a hundredth of a yuan). Money is
// counted in whole fen so that sums are exact; JSON shows it in yuan as a
// number with two decimals (10000.00).
type Fen int64

// MaxFen is the largest amount accepted: 100 million yuan, far above any
// community's training budget, so a slipped digit is caught.
const MaxFen Fen = 100_000_000_00

// String is the amount in yuan with two decimals: "8500.00", "-12.50".
func (f Fen) String() string {
	sign, v := "", int64(f)
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// MarshalJSON writes the amount as a JSON number of yuan with two decimals.
func (f Fen) MarshalJSON() ([]byte, error) { return []byte(f.String()), nil }

// Yuan is an amount as a client wrote it, a JSON number (8500.5) or string
// ("8500.50"), kept as text so it is never rounded through floating point.
// Fen checks and converts it.
type Yuan string

// UnmarshalJSON keeps the number's or string's text; anything else (true,
// an object) is kept too, for Fen to refuse with the field's name.
func (y *Yuan) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*y = Yuan(strings.TrimSpace(s))
		return nil
	}
	if string(b) == "null" {
		*y = ""
		return nil
	}
	*y = Yuan(b)
	return nil
}

var yuanText = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,2})?$`)

// Fen converts the amount: yuan with at most two decimals, from 0 to
// MaxFen. Exponents, signs and thousands separators are refused.
func (y Yuan) Fen() (Fen, error) {
	s := string(y)
	if s == "" {
		return 0, errors.New("required: yuan with at most 2 decimals, e.g. 10000 or \"8500.50\"")
	}
	if !yuanText.MatchString(s) {
		return 0, errors.New("yuan with at most 2 decimals and no sign or exponent, e.g. 10000 or \"8500.50\"")
	}
	whole, frac, _ := strings.Cut(s, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, err
	}
	c, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	if w > int64(MaxFen/100) || Fen(w*100+c) > MaxFen {
		return 0, fmt.Errorf("at most %s yuan", MaxFen)
	}
	return Fen(w*100 + c), nil
}

// Budget thresholds: the team lead and the emergency center are texted
// once each when a team's spend for a year passes them.
var budgetThresholds = []int{100, 80}

// BudgetInput sets a team's training budget for a year.
type BudgetInput struct {
	Amount Yuan   `json:"amount"`
	Note   string `json:"note"`
}

// TrainingInput records a course a team paid for.
type TrainingInput struct {
	// ID is optional: sending the same entry again with the same id records
	// it once, so a client may retry safely.
	ID     string `json:"id"`
	Course string `json:"course"`
	// Date is the course's date, YYYY-MM-DD in China time; its year is the
	// budget the money counts against.
	Date   string `json:"date"`
	Amount Yuan   `json:"amount"`
	// Attendees names who attended; AttendeeCount is how many did when
	// not everyone is named (defaults to the number of names).
	Attendees     []string `json:"attendees"`
	AttendeeCount int      `json:"attendee_count"`
}

// TrainingEntry is a recorded course.
type TrainingEntry struct {
	ID            string    `json:"id"`
	Community     string    `json:"community"`
	Team          string    `json:"team"`
	Year          int       `json:"year"`
	Date          string    `json:"date"`
	Course        string    `json:"course"`
	Amount        Fen       `json:"amount"`
	Attendees     []string  `json:"attendees"`
	AttendeeCount int       `json:"attendee_count"`
	CreatedBy     string    `json:"created_by,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// TeamBudget is a team's training money for a year: what was budgeted,
// what was spent on which courses.
type TeamBudget struct {
	Community string `json:"community"`
	Team      string `json:"team"`
	TeamName  string `json:"team_name"`
	Year      int    `json:"year"`
	// Budgeted is false until someone sets a budget; Budget is then 0.
	Budgeted  bool `json:"budgeted"`
	Budget    Fen  `json:"budget"`
	Spent     Fen  `json:"spent"`
	Remaining Fen  `json:"remaining"`
	// Percent is spent as a share of the budget, one decimal; null
	// without a budget.
	Percent      *float64        `json:"percent"`
	Courses      int             `json:"courses"`
	Attendees    int             `json:"attendees"`
	LastTraining string          `json:"last_training,omitempty"`
	Note         string          `json:"note,omitempty"`
	Entries      []TrainingEntry `json:"entries,omitempty"`
}

// percent is spent/budget in percent, one decimal.
func percent(spent, budget Fen) float64 {
	return math.Round(float64(spent)*1000/float64(budget)) / 10
}

// Training keeps teams' training budgets and spend. Recording spend (or
// lowering a budget) past 80% or 100% texts the team lead and the
// emergency center in the same transaction.
type Training struct {
	DB    storage.DB
	Relay *events.Relay
	Log   *slog.Logger
	Now   func() time.Time
}

const yearProblem = "a year from 2000 to 2100"

// CheckYear refuses a year outside 2000–2100.
func CheckYear(year int) error {
	if year < 2000 || year > 2100 {
		return errdefs.Invalid("year", yearProblem)
	}
	return nil
}

// team reads the team an API call names; another community's or a missing
// organisation is not found.
func team(ctx context.Context, q storage.Querier, community, id string) (Organisation, error) {
	o, err := scanOrg(q.QueryRow(ctx, `SELECT `+orgColumns+` FROM organisations WHERE id = $1 AND community_id = $2`, id, community))
	if err != nil {
		return Organisation{}, notFound("team", id, err)
	}
	return o, nil
}

// SetBudget sets (or changes) a team's budget for a year.
func (t *Training) SetBudget(ctx context.Context, community, teamID string, year int, in BudgetInput, by string) (TeamBudget, error) {
	verr := &errdefs.ValidationError{}
	if CheckYear(year) != nil {
		verr.Add("year", yearProblem)
	}
	amount, err := in.Amount.Fen()
	if err != nil {
		verr.Add("amount", err.Error())
	}
	if !utf8.ValidString(in.Note) || utf8.RuneCountInString(in.Note) > 500 || incidents.HasControl(in.Note, true) {
		verr.Add("note", "text of at most 500 characters without control characters")
	}
	if err := verr.OrNil(); err != nil {
		return TeamBudget{}, err
	}
	var staged []events.Message
	err = t.DB.InTx(ctx, func(q storage.Querier) error {
		staged = nil
		if _, err := team(ctx, q, community, teamID); err != nil {
			return err
		}
		now := t.Now()
		if _, err := q.Exec(ctx, `INSERT INTO training_budgets (community_id, team_id, year, amount_fen, note, updated_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
			ON CONFLICT (community_id, team_id, year) DO UPDATE SET amount_fen = $4, note = $5, updated_by = $6, updated_at = $7`,
			community, teamID, year, int64(amount), in.Note, by, now.UnixMilli()); err != nil {
			return fmt.Errorf("set budget of %s for %d: %w", teamID, year, err)
		}
		staged, err = budgetAlerts(ctx, q, now, community, teamID, year)
		return err
	})
	if err != nil {
		return TeamBudget{}, err
	}
	t.Relay.Send(ctx, staged)
	return t.TeamBudget(ctx, community, teamID, year, true)
}

var isoDate = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// check validates a training entry and fills the count.
func (in *TrainingInput) check(now time.Time) (day time.Time, amount Fen, err error) {
	verr := &errdefs.ValidationError{}
	if in.ID != "" && !slug.MatchString(in.ID) {
		verr.Add("id", "2–63 characters of a–z, 0–9, _ and -")
	}
	checkName(verr, "course", in.Course, true)
	day, perr := time.ParseInLocation("2006-01-02", in.Date, Zone)
	switch {
	case !isoDate.MatchString(in.Date) || perr != nil:
		verr.Add("date", "a date as YYYY-MM-DD")
	case day.Year() < 2000 || day.After(now.In(Zone).AddDate(1, 0, 0)):
		verr.Add("date", "from 2000 to a year from today")
	}
	amount, aerr := in.Amount.Fen()
	if aerr != nil {
		verr.Add("amount", aerr.Error())
	}
	if len(in.Attendees) > 500 {
		verr.Add("attendees", "at most 500 names; give attendee_count for more")
	}
	for i, name := range in.Attendees {
		if strings.TrimSpace(name) == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > 100 || incidents.HasControl(name, false) {
			verr.Add(fmt.Sprintf("attendees[%d]", i), "a name of at most 100 characters without control characters")
		}
	}
	if in.AttendeeCount == 0 {
		in.AttendeeCount = len(in.Attendees)
	}
	switch {
	case in.AttendeeCount < len(in.Attendees):
		verr.Add("attendee_count", "at least the number of attendees named")
	case in.AttendeeCount < 1:
		verr.Add("attendee_count", "name the attendees or give how many attended (at least 1)")
	case in.AttendeeCount > 100000:
		verr.Add("attendee_count", "at most 100000")
	}
	return day, amount, verr.OrNil()
}

// Record stores a course a team paid for and texts the lead and the
// center if the year's spend passed 80% or 100% of the budget. It
// returns the entry and whether it is new: an entry sent again with the
// same id is returned as it was, and one that differs is a conflict.
func (t *Training) Record(ctx context.Context, community, teamID string, in TrainingInput, by string) (TrainingEntry, bool, error) {
	now := t.Now()
	day, amount, err := in.check(now)
	if err != nil {
		return TrainingEntry{}, false, err
	}
	if in.Attendees == nil {
		in.Attendees = []string{}
	}
	e := TrainingEntry{ID: in.ID, Community: community, Team: teamID, Year: day.Year(), Date: in.Date, Course: in.Course,
		Amount: amount, Attendees: in.Attendees, AttendeeCount: in.AttendeeCount, CreatedBy: by, CreatedAt: now.UTC()}
	if e.ID == "" {
		e.ID = strings.ToLower(events.NewID("tr", now))
	}
	var staged []events.Message
	created := false
	err = t.DB.InTx(ctx, func(q storage.Querier) error {
		staged, created = nil, false
		if _, err := team(ctx, q, community, teamID); err != nil {
			return err
		}
		n, err := q.Exec(ctx, `INSERT INTO training_entries (id, community_id, team_id, year, day, course, amount_fen, attendees,
			attendee_count, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (community_id, id) DO NOTHING`,
			e.ID, community, teamID, e.Year, e.Date, e.Course, int64(e.Amount), mustJSON(e.Attendees), e.AttendeeCount, by, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("record training of %s: %w", teamID, err)
		}
		if n == 0 {
			old, err := getEntry(ctx, q, community, e.ID)
			if err != nil {
				return err
			}
			if old.Team != e.Team || old.Date != e.Date || old.Course != e.Course || old.Amount != e.Amount ||
				old.AttendeeCount != e.AttendeeCount || mustJSON(old.Attendees) != mustJSON(e.Attendees) {
				return fmt.Errorf("training entry %s exists with other details: %w", e.ID, errdefs.ErrConflict)
			}
			e = old
			return nil
		}
		created = true
		staged, err = budgetAlerts(ctx, q, now, community, teamID, e.Year)
		return err
	})
	if err != nil {
		return TrainingEntry{}, false, err
	}
	t.Relay.Send(ctx, staged)
	if created {
		t.Log.Info("training recorded", "community", community, "team", teamID, "year", e.Year, "amount", e.Amount.String())
	}
	return e, created, nil
}

// DeleteEntry removes a training entry recorded by mistake.
func (t *Training) DeleteEntry(ctx context.Context, community, teamID, id string) error {
	n, err := t.DB.Exec(ctx, `DELETE FROM training_entries WHERE community_id = $1 AND team_id = $2 AND id = $3`, community, teamID, id)
	if err != nil {
		return fmt.Errorf("delete training entry %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("training entry %s: %w", id, errdefs.ErrNotFound)
	}
	return nil
}

const entryColumns = `id, community_id, team_id, year, day, course, amount_fen, attendees, attendee_count, created_by, created_at`

func scanEntry(row storage.Row) (TrainingEntry, error) {
	var e TrainingEntry
	var amount, at int64
	var attendees string
	if err := row.Scan(&e.ID, &e.Community, &e.Team, &e.Year, &e.Date, &e.Course, &amount, &attendees, &e.AttendeeCount,
		&e.CreatedBy, &at); err != nil {
		return TrainingEntry{}, err
	}
	if err := json.Unmarshal([]byte(attendees), &e.Attendees); err != nil {
		return TrainingEntry{}, fmt.Errorf("attendees of %s: %w", e.ID, err)
	}
	e.Amount, e.CreatedAt = Fen(amount), time.UnixMilli(at).UTC()
	return e, nil
}

func getEntry(ctx context.Context, q storage.Querier, community, id string) (TrainingEntry, error) {
	e, err := scanEntry(q.QueryRow(ctx, `SELECT `+entryColumns+` FROM training_entries WHERE community_id = $1 AND id = $2`, community, id))
	if err != nil {
		return TrainingEntry{}, notFound("training entry", id, err)
	}
	return e, nil
}

// TeamBudget reads a team's budget and spend for a year, with the courses
// when entries is set.
func (t *Training) TeamBudget(ctx context.Context, community, teamID string, year int, entries bool) (TeamBudget, error) {
	if err := CheckYear(year); err != nil {
		return TeamBudget{}, err
	}
	o, err := team(ctx, t.DB, community, teamID)
	if err != nil {
		return TeamBudget{}, err
	}
	b, err := teamBudget(ctx, t.DB, o, year)
	if err != nil || !entries {
		return b, err
	}
	rows, err := t.DB.Query(ctx, `SELECT `+entryColumns+` FROM training_entries WHERE community_id = $1 AND team_id = $2 AND year = $3
		ORDER BY day, created_at, id`, community, teamID, year)
	if err != nil {
		return TeamBudget{}, fmt.Errorf("training of %s in %d: %w", teamID, year, err)
	}
	defer rows.Close()
	b.Entries = []TrainingEntry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return TeamBudget{}, err
		}
		b.Entries = append(b.Entries, e)
	}
	return b, rows.Err()
}

// teamBudget sums a team's year.
func teamBudget(ctx context.Context, q storage.Querier, o Organisation, year int) (TeamBudget, error) {
	b := TeamBudget{Community: o.Community, Team: o.ID, TeamName: o.Name, Year: year}
	var amount int64
	err := q.QueryRow(ctx, `SELECT amount_fen, note FROM training_budgets WHERE community_id = $1 AND team_id = $2 AND year = $3`,
		o.Community, o.ID, year).Scan(&amount, &b.Note)
	switch {
	case err == nil:
		b.Budgeted, b.Budget = true, Fen(amount)
	case !errors.Is(err, storage.ErrNoRows):
		return TeamBudget{}, fmt.Errorf("budget of %s for %d: %w", o.ID, year, err)
	}
	var spent int64
	if err := q.QueryRow(ctx, `SELECT COALESCE(SUM(amount_fen), 0), COUNT(*), COALESCE(SUM(attendee_count), 0), COALESCE(MAX(day), '')
		FROM training_entries WHERE community_id = $1 AND team_id = $2 AND year = $3`, o.Community, o.ID, year).
		Scan(&spent, &b.Courses, &b.Attendees, &b.LastTraining); err != nil {
		return TeamBudget{}, fmt.Errorf("spend of %s in %d: %w", o.ID, year, err)
	}
	b.Spent = Fen(spent)
	b.Remaining = b.Budget - b.Spent
	if b.Budgeted && b.Budget > 0 {
		p := percent(b.Spent, b.Budget)
		b.Percent = &p
	}
	return b, nil
}

// Budgets lists every team's budget and spend for a year: volunteer
// teams, and any other organisation with a budget or spend that year.
func (t *Training) Budgets(ctx context.Context, community string, year int) ([]TeamBudget, error) {
	if err := CheckYear(year); err != nil {
		return nil, err
	}
	return budgets(ctx, t.DB, community, year)
}

func budgets(ctx context.Context, q storage.Querier, community string, year int) ([]TeamBudget, error) {
	orgs, err := listOrgs(ctx, q, community, "")
	if err != nil {
		return nil, err
	}
	out := []TeamBudget{}
	for _, o := range orgs {
		b, err := teamBudget(ctx, q, o, year)
		if err != nil {
			return nil, err
		}
		if o.Kind == OrgVolunteerTeam || b.Budgeted || b.Courses > 0 {
			out = append(out, b)
		}
	}
	return out, nil
}

// budgetAlerts queues the text for the highest threshold a team's spend
// has passed, to the team lead (the team's duty phone) and the emergency
// center, unless it was queued before: each goes once per team, year and
// threshold, however often spend is recorded or the job runs.
func budgetAlerts(ctx context.Context, q storage.Querier, now time.Time, community, teamID string, year int) ([]events.Message, error) {
	o, err := team(ctx, q, community, teamID)
	if err != nil {
		return nil, err
	}
	b, err := teamBudget(ctx, q, o, year)
	if err != nil || !b.Budgeted || b.Spent <= 0 {
		return nil, err
	}
	level := 0
	for _, th := range budgetThresholds {
		if int64(b.Spent)*100 >= int64(b.Budget)*int64(th) {
			level = th
			break
		}
	}
	if level == 0 {
		return nil, nil
	}
	c, err := scanCommunity(q.QueryRow(ctx, `SELECT `+communityColumns+` FROM communities WHERE id = $1`, community))
	if err != nil {
		return nil, fmt.Errorf("community %s: %w", community, err)
	}
	params := map[string]string{"team": o.Name, "year": strconv.Itoa(year), "spent": b.Spent.String(), "budget": b.Budget.String()}
	tpl := sms.TplBudget100
	if level == 80 { // the budget is positive here
		tpl = sms.TplBudget80
		params["percent"] = strconv.FormatFloat(percent(b.Spent, b.Budget), 'f', -1, 64)
		params["remaining"] = b.Remaining.String()
	}
	var out []events.Message
	to := map[string]string{"lead": o.DutyPhone}
	if center, ok, err := OrgOfKind(ctx, q, community, OrgEmergencyCenter); err != nil {
		return nil, err
	} else if ok && center.DutyPhone != o.DutyPhone {
		to["center"] = center.DutyPhone
	}
	for _, who := range []string{"lead", "center"} {
		if to[who] == "" {
			continue
		}
		m, err := sms.Queue(ctx, q, now, sms.Text{
			Key:       fmt.Sprintf("budget:%s:%s:%d:%d:%s", community, teamID, year, level, who),
			Community: community, To: to[who], Locale: c.Locale, Purpose: PurposeReminder, Bulk: true,
			Template: tpl, Params: params})
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}
