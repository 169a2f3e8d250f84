package responders

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// RemindersJob is the daily scheduled job that sends training and
// certificate reminders.
const RemindersJob = "reminders"

// PurposeReminder marks reminder texts in the outbox.
const PurposeReminder = "reminder"

// Certificate reminders go this many days before a certificate expires.
var certReminderDays = []int{14, 60}

// IdleMonths without a training entry make a team "idle".
const IdleMonths = 6

// Reminders sends the daily reminders: the budgeting season, training
// spend past 80% and 100% of a budget, teams with no training for six
// months, and certificates about to expire. Every text's key names what it
// is about and when, so running a day twice (a redelivered slot, a
// restart) sends nothing twice. Texts are bulk: they never hold up a live
// incident's texts.
type Reminders struct {
	DB    storage.DB
	Tax   *events.Taxonomy
	Relay *events.Relay
	Log   *slog.Logger
	// Now stamps the outbox rows; the day the reminders are about is the
	// slot's, so tests move it with the scheduler's clock.
	Now func() time.Time
	// BudgetMonth is the month (2–12) communities draft next year's budget
	// in; the budgeting-season reminder goes out in the month before.
	BudgetMonth int
}

// Run sends the reminders due on the slot's day (in China time).
func (r *Reminders) Run(ctx context.Context, slot time.Time) error {
	today := slot.In(Zone)
	reg := &Registry{DB: r.DB, Tax: r.Tax, Now: r.Now}
	cs, err := reg.ListCommunities(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		n, err := r.community(ctx, c, today)
		if err != nil {
			return fmt.Errorf("reminders of %s on %s: %w", c.ID, today.Format(time.DateOnly), err)
		}
		if n > 0 {
			r.Log.Info("reminders queued", "community", c.ID, "day", today.Format(time.DateOnly), "texts", n)
		}
	}
	return nil
}

// community queues one community's reminders and says how many texts
// were new. It reads outside any transaction and queues in small ones: on
// SQLite a transaction holds the write lock, which live incidents need.
func (r *Reminders) community(ctx context.Context, c Community, today time.Time) (int, error) {
	orgs, err := listOrgs(ctx, r.DB, c.ID, "")
	if err != nil {
		return 0, err
	}
	byID := map[string]Organisation{}
	for _, o := range orgs {
		byID[o.ID] = o
	}
	center, _, err := OrgOfKind(ctx, r.DB, c.ID, OrgEmergencyCenter)
	if err != nil {
		return 0, err
	}
	rs, err := queryResponders(ctx, r.DB, `SELECT `+responderColumns+` FROM responders WHERE community_id = $1 ORDER BY id`, c.ID)
	if err != nil {
		return 0, err
	}
	texts := CertificateReminders(r.Tax, c, rs, byID, today)
	idle, err := r.idleTeams(ctx, c, orgs, rs, center, today)
	if err != nil {
		return 0, err
	}
	texts = append(texts, idle...)
	season, err := r.budgetSeason(ctx, c, orgs, center, today)
	if err != nil {
		return 0, err
	}
	texts = append(texts, season...)
	n, err := r.queue(ctx, texts)
	if err != nil {
		return n, err
	}
	// Spend is checked when it is recorded; this catches what a failed
	// send or a budget change left behind.
	rows, err := r.DB.Query(ctx, `SELECT team_id FROM training_budgets WHERE community_id = $1 AND year = $2 ORDER BY team_id`,
		c.ID, today.Year())
	if err != nil {
		return n, fmt.Errorf("budgets of %d: %w", today.Year(), err)
	}
	var teams []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return n, err
		}
		teams = append(teams, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return n, err
	}
	for _, id := range teams {
		if _, ok := byID[id]; !ok {
			continue // the organisation is gone; nobody to tell
		}
		var staged []events.Message
		err := r.Relay.Commit(ctx, func(q storage.Querier) ([]events.Message, error) {
			var err error
			staged, err = budgetAlerts(ctx, q, r.Now(), c.ID, id, today.Year())
			return staged, err
		})
		if err != nil {
			return n, err
		}
		n += len(staged)
	}
	return n, nil
}

// queue queues texts a few per transaction and says how many were new.
func (r *Reminders) queue(ctx context.Context, texts []sms.Text) (int, error) {
	const batch = 20
	n := 0
	for len(texts) > 0 {
		part := texts[:min(batch, len(texts))]
		texts = texts[len(part):]
		err := r.Relay.Commit(ctx, func(q storage.Querier) ([]events.Message, error) {
			var staged []events.Message
			now := r.Now()
			for _, t := range part {
				m, err := sms.Queue(ctx, q, now, t)
				if err != nil {
					return nil, err
				}
				staged = append(staged, m...)
			}
			n += len(staged)
			return staged, nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// day is the calendar day of t in China time, at midnight.
func day(t time.Time) time.Time {
	t = t.In(Zone)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, Zone)
}

// daysBetween counts calendar days from a to b in China time (no daylight
// saving there, so every day has 24 hours).
func daysBetween(a, b time.Time) int {
	return int(day(b).Sub(day(a)).Hours() / 24)
}

// monthsBetween counts whole calendar months from a to b.
func monthsBetween(a, b time.Time) int {
	a, b = day(a), day(b)
	m := (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month())
	if b.Day() < a.Day() {
		m--
	}
	return m
}

// CertificateReminders lists the certificate texts due on today: 60 and 14
// days before a certificate expires, to the responder and to their team
// lead (the team organisation's duty phone). Only the certificate that
// lasts longest counts for each skill, so a renewed one silences the old.
// A certificate first seen with 30 days left gets the 60-day text at once;
// one with 10 days left only the 14-day text. Keys carry the expiry date,
// so a renewed certificate gets reminders of its own in time.
func CertificateReminders(tax *events.Taxonomy, c Community, rs []Responder, teams map[string]Organisation, today time.Time) []sms.Text {
	var out []sms.Text
	for _, p := range rs {
		latest := map[string]Certificate{}
		for _, cert := range p.Certificates {
			if old, ok := latest[cert.Skill]; !ok || cert.ExpiresAt.After(old.ExpiresAt) {
				latest[cert.Skill] = cert
			}
		}
		skills := make([]string, 0, len(latest))
		for s := range latest {
			skills = append(skills, s)
		}
		sort.Strings(skills)
		for _, skill := range skills {
			cert := latest[skill]
			left := daysBetween(today, cert.ExpiresAt)
			due := 0
			for _, d := range certReminderDays {
				if left > 0 && left <= d {
					due = d
					break
				}
			}
			if due == 0 {
				continue
			}
			expires := day(cert.ExpiresAt).Format(time.DateOnly)
			key := fmt.Sprintf("cert:%s:%s:%s:%s:%d:", c.ID, p.ID, skill, expires, due)
			params := func(locale string) map[string]string {
				label := tax.Skills[skill].Label.In(locale)
				if label == "" {
					label = skill
				}
				name := cert.Name
				if name == "" && strings.HasPrefix(locale, "en") {
					name = label + " certificate"
				} else if name == "" {
					name = label + "证书"
				}
				return map[string]string{"name": p.Name, "cert": name, "date": expires, "days": strconv.Itoa(left), "skill": label}
			}
			out = append(out, sms.Text{Key: key + "self", Community: c.ID, To: p.Phone, Locale: p.Locale,
				Purpose: PurposeReminder, Bulk: true, Template: sms.TplCertExpiring, Params: params(p.Locale)})
			lead, ok := teams[p.Team]
			if !ok || lead.DutyPhone == "" || lead.DutyPhone == p.Phone {
				continue
			}
			lp := params(c.Locale)
			lp["team"] = lead.Name
			out = append(out, sms.Text{Key: key + "lead", Community: c.ID, To: lead.DutyPhone, Locale: c.Locale,
				Purpose: PurposeReminder, Bulk: true, Template: sms.TplCertExpiringLead, Params: lp})
		}
	}
	return out
}

// idleTeams lists the texts for teams with members but no training entry
// for six months (counting from the team's registration when it never
// trained): to the team lead, or the emergency center when the team has
// no duty phone; at most once a calendar month.
func (r *Reminders) idleTeams(ctx context.Context, c Community, orgs []Organisation, rs []Responder, center Organisation, today time.Time) ([]sms.Text, error) {
	members := map[string]int{}
	for _, p := range rs {
		if p.Team != "" {
			members[p.Team]++
		}
	}
	last := map[string]string{}
	rows, err := r.DB.Query(ctx, `SELECT team_id, MAX(day) FROM training_entries WHERE community_id = $1 AND day <= $2 GROUP BY team_id`,
		c.ID, today.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("last training of teams: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, d string
		if err := rows.Scan(&id, &d); err != nil {
			return nil, err
		}
		last[id] = d
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	cutoff := day(today).AddDate(0, -IdleMonths, 0).Format(time.DateOnly)
	var out []sms.Text
	for _, o := range orgs {
		since := last[o.ID]
		if since == "" {
			since = day(o.CreatedAt).Format(time.DateOnly)
		}
		if members[o.ID] == 0 || since >= cutoff {
			continue
		}
		to := o.DutyPhone
		if to == "" {
			to = center.DutyPhone
		}
		if to == "" {
			continue
		}
		shown := last[o.ID]
		if shown == "" && strings.HasPrefix(c.Locale, "en") {
			shown = "none"
		} else if shown == "" {
			shown = "无"
		}
		from, err := time.ParseInLocation(time.DateOnly, since, Zone)
		if err != nil {
			return nil, fmt.Errorf("last training of %s: %w", o.ID, err)
		}
		out = append(out, sms.Text{Key: fmt.Sprintf("training-idle:%s:%s:%s", c.ID, o.ID, today.Format("2006-01")),
			Community: c.ID, To: to, Locale: c.Locale, Purpose: PurposeReminder, Bulk: true, Template: sms.TplTrainingIdle,
			Params: map[string]string{"team": o.Name, "last": shown, "months": strconv.Itoa(monthsBetween(from, today))}})
	}
	return out, nil
}

// budgetSeason lists the texts that remind the emergency center and the
// owners' committee, in the month before the budgeting month, to put
// training money in next year's budget, with this year's spend per team.
func (r *Reminders) budgetSeason(ctx context.Context, c Community, orgs []Organisation, center Organisation, today time.Time) ([]sms.Text, error) {
	if r.BudgetMonth < 2 || r.BudgetMonth > 12 || today.Month() != time.Month(r.BudgetMonth-1) {
		return nil, nil
	}
	bs, err := budgets(ctx, r.DB, c.ID, today.Year())
	if err != nil {
		return nil, err
	}
	en := strings.HasPrefix(c.Locale, "en")
	month := strconv.Itoa(r.BudgetMonth) + "月"
	if en {
		month = time.Month(r.BudgetMonth).String()
	}
	params := map[string]string{"community": c.Name, "month": month, "year": strconv.Itoa(today.Year() + 1),
		"thisyear": strconv.Itoa(today.Year()), "summary": spendSummary(bs, en)}
	to := map[string]string{"center": center.DutyPhone}
	for _, o := range orgs {
		if o.Kind == OrgOwnersCommittee && o.DutyPhone != "" && o.DutyPhone != center.DutyPhone {
			to["committee"] = o.DutyPhone
			break
		}
	}
	var out []sms.Text
	for _, who := range []string{"center", "committee"} {
		if to[who] == "" {
			continue
		}
		out = append(out, sms.Text{Key: fmt.Sprintf("budget-season:%s:%d:%s", c.ID, today.Year()+1, who),
			Community: c.ID, To: to[who], Locale: c.Locale, Purpose: PurposeReminder, Bulk: true,
			Template: sms.TplBudgetSeason, Params: params})
	}
	return out, nil
}

// spendSummary says in a few words what each team spent of its budget;
// a text has room for a handful of teams.
func spendSummary(bs []TeamBudget, en bool) string {
	const shown = 5
	var parts []string
	for i, b := range bs {
		if i == shown {
			if en {
				parts = append(parts, fmt.Sprintf("and %d more", len(bs)-shown))
			} else {
				parts = append(parts, fmt.Sprintf("等共%d支队伍", len(bs)))
			}
			break
		}
		switch {
		case en && b.Budgeted:
			parts = append(parts, fmt.Sprintf("%s CNY %s of %s", b.TeamName, b.Spent, b.Budget))
		case en:
			parts = append(parts, fmt.Sprintf("%s CNY %s (no budget)", b.TeamName, b.Spent))
		case b.Budgeted:
			parts = append(parts, fmt.Sprintf("%s %s/%s元", b.TeamName, b.Spent, b.Budget))
		default:
			parts = append(parts, fmt.Sprintf("%s %s元（未编预算）", b.TeamName, b.Spent))
		}
	}
	switch {
	case len(parts) == 0 && en:
		return "none recorded"
	case len(parts) == 0:
		return "无记录"
	case en:
		return strings.Join(parts, "; ")
	}
	return strings.Join(parts, "；")
}
