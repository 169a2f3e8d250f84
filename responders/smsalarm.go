package responders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// Texting the community number raises an alarm: a registered resident's
// keyword ("火", "救命", "HELP", "1"…) becomes an alarm at their registered
// address, as if they had pressed; anyone else is told to call 110/119/120
// and the community's emergency center is texted their number.

// Outcomes of a text that is not an answer to an offer or a duty.
const (
	OutcomeAlarmRaised = "alarm_raised"
	// OutcomeAlarmHelp: a resident's text was no keyword; they were told the keywords.
	OutcomeAlarmHelp = "alarm_help"
	// OutcomeNotRegistered: told to call 110/119/120; the center was texted.
	OutcomeNotRegistered = "not_registered"
	// OutcomeNotRegisteredQuiet: the number was answered within the hour, so not again.
	OutcomeNotRegisteredQuiet = "not_registered_quiet"
)

// smsKeyPrefix starts the idempotency key of an alarm raised by text. The
// rest is the provider's message id, so a webhook delivered twice, or a
// handler retried, names the same alarm.
const smsKeyPrefix = "sms:"

func byText(alarmKey string) bool { return strings.HasPrefix(alarmKey, smsKeyPrefix) }

// strangerQuiet is how long a number that is not a resident gets no second
// reply: a carrier blocks a sender that answers every text of a stranger.
const strangerQuiet = time.Hour

// askedWithin is how long after an offer or a duty a "1" from that phone
// still answers it rather than raising an alarm.
const askedWithin = time.Hour

// textSender is who a text came from, as far as the registry knows.
type textSender struct {
	resident  *Resident // the registration that best fits the number texted
	responder bool
	dutyPhone bool // an organisation's duty phone
}

func (s textSender) known() bool { return s.resident != nil || s.responder || s.dutyPhone }

// alarmByText takes the texts that are not answers: alarm keywords from
// residents, and anything from a number that is not a resident. handled is
// false for everything else, which HandleReply treats as an answer to an
// offer or a duty, as it always has. A reply word wins over a keyword ("1"
// both accepts and calls for help) when the phone was offered a call or
// given a duty that is still open or under an hour old; a keyword that is no
// reply word ("火") raises the alarm even then.
func (d *Dispatcher) alarmByText(ctx context.Context, q storage.Querier, in sms.Inbound, reply sms.Reply,
	now time.Time) ([]events.Message, string, bool, error) {
	typ := sms.ParseAlarm(in.Body)
	who, err := whoTexted(ctx, q, in)
	if err != nil {
		return nil, "", false, err
	}
	switch {
	case !who.known():
		staged, outcome, err := d.stranger(ctx, q, in, now)
		return staged, outcome, true, err
	case typ != "" && who.resident != nil:
		if reply != sms.ReplyUnknown {
			asked, err := askedRecently(ctx, q, in.From, now)
			if err != nil || asked {
				return nil, "", false, err
			}
		}
		staged, err := d.raiseByText(ctx, q, in, *who.resident, typ, now)
		return staged, OutcomeAlarmRaised, true, err
	case typ != "" && reply == sms.ReplyUnknown:
		// A responder or a duty phone calling for help: we have no
		// address for them, so they are answered like a stranger.
		staged, outcome, err := d.stranger(ctx, q, in, now)
		return staged, outcome, true, err
	case reply == sms.ReplyUnknown && who.resident != nil && !who.responder:
		r := who.resident
		staged, err := d.notify(ctx, q, now, sms.Text{Key: "reply:" + in.SID, Community: r.Community, To: in.From,
			Template: sms.TplSMSAlarmHelp, Locale: r.Locale, Purpose: "alarm_help"})
		return staged, OutcomeAlarmHelp, true, err
	}
	return nil, "", false, nil
}

// whoTexted looks the sender up. A phone registered as a resident of
// several communities is taken as the resident of the community whose
// number was texted, else of the registration changed last.
func whoTexted(ctx context.Context, q storage.Querier, in sms.Inbound) (textSender, error) {
	var s textSender
	r, err := scanResident(q.QueryRow(ctx, `SELECT `+residentColumns+` FROM residents WHERE phone = $1
		ORDER BY CASE WHEN community_id IN (SELECT id FROM communities WHERE sms_number = $2 AND sms_number <> '') THEN 0 ELSE 1 END,
		updated_at DESC, id LIMIT 1`, in.From, in.To))
	switch {
	case err == nil:
		s.resident = &r
	case !errors.Is(err, storage.ErrNoRows):
		return s, fmt.Errorf("resident by phone: %w", err)
	}
	var asResponder, asDutyPhone int
	if err := q.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM responders WHERE phone = $1),
		(SELECT COUNT(*) FROM organisations WHERE duty_phone = $1)`, in.From).Scan(&asResponder, &asDutyPhone); err != nil {
		return s, fmt.Errorf("responder or duty phone by phone: %w", err)
	}
	s.responder, s.dutyPhone = asResponder > 0, asDutyPhone > 0
	return s, nil
}

// askedRecently reports whether phone was offered a call or given a duty
// that is still open or under askedWithin old.
func askedRecently(ctx context.Context, q storage.Querier, phone string, now time.Time) (bool, error) {
	// Duties belong to plans, which build on this package; reading their
	// table here keeps the answer in the same transaction.
	var n int
	err := q.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM offers o JOIN responders r ON r.id = o.responder_id JOIN incidents i ON i.id = o.incident_id
			WHERE r.phone = $1 AND (i.status IN ('open', 'responding', 'escalated') OR o.created_at >= $2))
		+ (SELECT COUNT(*) FROM duties d JOIN incidents i ON i.id = d.incident_id
			WHERE d.phone = $1 AND (i.status IN ('open', 'responding', 'escalated') OR d.assigned_at >= $2))`,
		phone, now.Add(-askedWithin).UnixMilli()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("offers and duties of a phone: %w", err)
	}
	return n > 0, nil
}

// raiseByText stages an alarm for a resident who texted a keyword, in the
// same transaction as the inbound text: it is published once the text is
// recorded, and never twice. Intake turns it into an incident like a press;
// the reporter-feedback handler confirms it with the address (one text).
func (d *Dispatcher) raiseByText(ctx context.Context, q storage.Querier, in sms.Inbound, r Resident, typ string,
	now time.Time) ([]events.Message, error) {
	a, err := incidents.NewAlarm(d.Tax, r.Community, r.ID, incidents.AlarmRequest{
		Key: smsKeyPrefix + in.SID, Type: typ, Address: r.Address, Note: "短信报警：" + snippet(in.Body, 100),
	}, now)
	if err != nil {
		return nil, events.Permanent(fmt.Errorf("alarm from text %s: %w", in.SID, err))
	}
	// Without a registered location intake places it at the community's
	// centre and the address tells people where to go.
	if r.Location != nil {
		a.Location, a.HasLocation = *r.Location, true
	}
	m, err := incidents.AlarmMessage(a)
	if err != nil {
		return nil, err
	}
	if err := events.Stage(ctx, q, now, m); err != nil {
		return nil, err
	}
	d.Log.Info("alarm raised by text", "alarm", a.ID, "type", typ, "community", r.Community, "resident", r.ID,
		"from", sms.Mask(in.From), "sid", in.SID, "has_location", a.HasLocation)
	return []events.Message{m}, nil
}

// stranger answers a text from a number that is not a resident: call
// 110/119/120. The emergency center of the community texted gets the
// number, in full so it can call back, and the words. Both happen at most
// once per strangerQuiet for one number.
func (d *Dispatcher) stranger(ctx context.Context, q storage.Querier, in sms.Inbound, now time.Time) ([]events.Message, string, error) {
	var recent int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM sms_outbox WHERE to_phone = $1 AND template = $2 AND created_at >= $3`,
		in.From, sms.TplSMSNotRegistered, now.Add(-strangerQuiet).UnixMilli()).Scan(&recent); err != nil {
		return nil, "", fmt.Errorf("recent answers to a stranger: %w", err)
	}
	if recent > 0 {
		d.Log.Info("text from a number that is not a resident; answered within the hour already", "from", sms.Mask(in.From), "sid", in.SID)
		return nil, OutcomeNotRegisteredQuiet, nil
	}
	staged, err := d.notify(ctx, q, now, sms.Text{Key: "reply:" + in.SID, To: in.From, Template: sms.TplSMSNotRegistered,
		Locale: replyLocale(in.Body), Purpose: "not_registered"})
	if err != nil {
		return nil, "", err
	}
	communities, err := communitiesTexted(ctx, q, in)
	if err != nil {
		return nil, "", err
	}
	if len(communities) == 0 {
		d.Log.Warn("text from a number that is not a resident matches no community; only the reply goes out",
			"from", sms.Mask(in.From), "to", sms.Mask(in.To), "sid", in.SID)
		return staged, OutcomeNotRegistered, nil
	}
	params := map[string]string{"phone": in.From, "body": snippet(in.Body, 60)}
	texted := 0
	for _, community := range communities {
		centers, err := listOrgs(ctx, q, community, OrgEmergencyCenter)
		if err != nil {
			return nil, "", err
		}
		for _, c := range centers {
			if c.DutyPhone == "" || c.DutyPhone == in.From {
				continue
			}
			m, err := d.notify(ctx, q, now, sms.Text{Key: "stranger:" + in.SID + ":" + c.ID, Community: community,
				To: c.DutyPhone, Template: sms.TplSMSStrangerCenter, Params: params, Purpose: "not_registered_center"})
			if err != nil {
				return nil, "", err
			}
			staged = append(staged, m...)
			texted++
		}
	}
	if texted == 0 {
		d.Log.Error("text from a number that is not a resident, but no emergency center has a duty phone",
			"from", sms.Mask(in.From), "communities", communities)
	}
	return staged, OutcomeNotRegistered, nil
}

// communitiesTexted finds the communities a text was meant for: those whose
// SMS number it was sent to; else the only community there is; else those
// where the sender is a responder or a duty phone.
func communitiesTexted(ctx context.Context, q storage.Querier, in sms.Inbound) ([]string, error) {
	byNumber, err := communityIDs(ctx, q, `SELECT id FROM communities WHERE sms_number = $1 AND sms_number <> '' ORDER BY id`, in.To)
	if err != nil || len(byNumber) > 0 {
		return byNumber, err
	}
	all, err := communityIDs(ctx, q, `SELECT id FROM communities ORDER BY id LIMIT 2`)
	if err != nil || len(all) == 1 {
		return all, err
	}
	return communityIDs(ctx, q, `SELECT community_id FROM responders WHERE phone = $1
		UNION SELECT community_id FROM organisations WHERE duty_phone = $1`, in.From)
}

func communityIDs(ctx context.Context, q storage.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("communities texted: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// snippet is a text's words as another text may quote them: on one line,
// without control characters, at most n runes.
func snippet(body string, n int) string {
	body = strings.Join(strings.FieldsFunc(body, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if rs := []rune(body); len(rs) > n {
		return string(rs[:n]) + "…"
	}
	return body
}

// replyLocale answers a text in Latin letters without Chinese in English: a
// visitor who texts HELP may not read Chinese.
func replyLocale(body string) string {
	latin := false
	for _, r := range body {
		if unicode.Is(unicode.Han, r) {
			return "zh-CN"
		}
		latin = latin || unicode.Is(unicode.Latin, r)
	}
	if latin {
		return "en"
	}
	return "zh-CN"
}
