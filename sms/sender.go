package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/metrics"
	"github.com/shouwang/shouwang/storage"
)

// StatusSuppressed marks a text not sent because the same words already
// reached the same phone within the carrier's window.
const StatusSuppressed = "suppressed"

// StatusBundled marks an offer text that went out inside another text.
const StatusBundled = "bundled"

// Carrier safety: carriers block senders that text one phone too often or
// repeat themselves.
type Carrier struct {
	// PerRecipientPerMinute caps texts to one phone in any minute; more
	// wait their turn (and may be bundled).
	PerRecipientPerMinute int
	// IdenticalWindow is how long the same words are not sent twice to one
	// phone.
	IdenticalWindow time.Duration
}

// Sender hands queued texts and calls to the provider, once each. It is
// the handler of the sms.send consumer.
type Sender struct {
	DB       storage.DB
	Provider Provider
	Relay    *events.Relay
	Log      *slog.Logger
	// Limiter caps texts per second to what the provider allows.
	Limiter *rate.Limiter
	Carrier Carrier
	// Bulk, when set, makes this the sender of bulk texts (reminders). It
	// paces itself on Bulk, takes a token from the shared Limiter only when
	// one is free right now (so a live text never queues behind it), and
	// leaves half of each phone's per-minute allowance to live texts.
	Bulk *rate.Limiter
	// StatusCallback is the public URL of the delivery-receipt webhook, or "".
	StatusCallback string
	// PublicURL is where Twilio posts keypad answers during a call.
	PublicURL string
	Now       func() time.Time
	// Metrics counts texts by status and times the first offer of each
	// incident; nil counts nothing.
	Metrics *metrics.Set
	// FirstMarked saves the first-offer write for an incident's later
	// offers; nil writes for every offer text.
	FirstMarked *FirstMarked
}

// Handle sends the queued texts and calls a message wakes it for, side by
// side. A text already sent is not sent again; a provider outage returns
// an error so the bus retries with backoff; a text the provider refuses
// for good is marked failed and reported. When some texts of a message
// must be tried again, the message is: the redelivery finds the others
// sent and skips them.
//
// The texts of one message are claimed in one write and recorded sent in
// as few as they finish in: a write for each, twice, was most of the
// transactions of an alarm in SQLite's one writer (issue 8).
func (s *Sender) Handle(ctx context.Context, ev events.Event) error {
	var p sendPayload
	if err := ev.Decode(&p); err != nil {
		return events.Permanent(err)
	}
	ids := unique(p.ids())
	found, err := s.load(ctx, ids)
	if err != nil {
		return err
	}
	texts := make([]Queued, len(ids))
	errs := make([]error, len(ids))
	due := make([]bool, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		m, ok := found[id]
		if !ok {
			errs[i] = fmt.Errorf("text %s: %w", id, errdefs.ErrNotFound)
			continue
		}
		texts[i] = m
		wg.Go(func() { due[i], errs[i] = s.check(ctx, m) })
	}
	wg.Wait()
	var claim []string
	for i, m := range texts {
		if due[i] {
			claim = append(claim, m.ID)
		}
	}
	claimed, err := s.claim(ctx, claim)
	if err != nil {
		return err
	}
	sent := make(chan sentText, len(ids))
	for i, m := range texts {
		if !claimed[m.ID] {
			continue // bundled into another text meanwhile
		}
		wg.Go(func() {
			// Only a failure is written here: the recorder writes the
			// outcome of a text that went out.
			if err := s.send(ctx, i, m, sent); err != nil {
				errs[i] = err
			}
		})
	}
	go func() {
		wg.Wait()
		close(sent)
	}()
	s.recordSent(ctx, sent, errs)
	return retryOutcome(errs)
}

// retryOutcome is the outcome of a message whose texts ended in errs: nil
// when all went, the latest of their waits when every failed one asked to
// wait, else an error for the bus's backoff. One text's permanent failure
// does not give up on the others: the message is retried, and the bus
// gives up on it only after its tries.
func retryOutcome(errs []error) error {
	var failed []error
	var wait time.Duration
	allWait := true
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed = append(failed, err)
		if d, ok := events.RetryDelay(err); ok {
			wait = max(wait, d)
		} else {
			allWait = false
		}
	}
	switch {
	case len(failed) == 0:
		return nil
	case allWait:
		return events.RetryAfter(wait, errors.Join(failed...))
	default:
		// Not joined: the bus would find a Permanent or a RetryAfter inside.
		msgs := make([]string, len(failed))
		for i, err := range failed {
			msgs[i] = err.Error()
		}
		return fmt.Errorf("%d of %d texts not sent: %s", len(failed), len(errs), strings.Join(msgs, "; "))
	}
}

// unique drops repeated ids, keeping the first of each: a text named twice
// would be claimed twice and sent twice.
func unique(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// idsPerStatement bounds the IN lists of the sender's statements.
const idsPerStatement = 500

// load reads the queued texts named, by id.
func (s *Sender) load(ctx context.Context, ids []string) (map[string]Queued, error) {
	out := make(map[string]Queued, len(ids))
	for part := range slices.Chunk(ids, idsPerStatement) {
		rows, err := queuedWhere(ctx, s.DB, `id IN (`+storage.Marks(1, len(part))+`)`, storage.Args(part)...)
		if err != nil {
			return nil, fmt.Errorf("read texts %s (and %d more): %w", part[0], len(part)-1, err)
		}
		for _, m := range rows {
			out[m.ID] = m
		}
	}
	return out, nil
}

// check says whether text m is due to go now. A text sent, bundled,
// suppressed or given up is not: a redelivery must not send it twice.
func (s *Sender) check(ctx context.Context, m Queued) (bool, error) {
	if m.Status != StatusPending && m.Status != StatusSending {
		return false, nil
	}
	if m.Channel != ChannelSMS {
		return true, nil
	}
	log := s.textLog(m)
	if m.Status == StatusSending {
		// An earlier attempt claimed this text and recorded no outcome: the
		// process died while handing it over, or right after. Sending again
		// blindly would text the same person twice (a crash test saw it).
		if done, err := s.sentBeforeCrash(ctx, m, log); err != nil || done {
			return false, err
		}
	}
	if wait, err := s.recipientWait(ctx, m); err != nil || wait > 0 {
		if err != nil {
			return false, err
		}
		log.Info("per-recipient limit reached; text waits", "retry_in", wait)
		return false, events.RetryAfter(wait, fmt.Errorf("%s: per-recipient limit", m.ID))
	}
	if dup, err := s.sentBefore(ctx, m); err != nil || dup {
		if err != nil {
			return false, err
		}
		log.Info("identical text sent to this phone recently; not sending it again")
		if err := s.mark(ctx, m.ID, StatusSuppressed, "", "identical text within the carrier window"); err != nil {
			return false, err
		}
		s.Metrics.SMS(m.Channel, StatusSuppressed, 1)
		return false, nil
	}
	return true, nil
}

func (s *Sender) textLog(m Queued) *slog.Logger {
	return s.Log.With("outbox_id", m.ID, "to", Mask(m.To), "template", m.Template, "channel", m.Channel, "incident", m.Incident)
}

// claim marks the texts ids as being sent, before anything else: from
// then no other worker can fold them into their own text, and this one
// may fold only rows nobody has started on. (Folding each other's rows
// deadlocked.) It returns the ids it claimed; the others were bundled
// into another text meanwhile.
func (s *Sender) claim(ctx context.Context, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	claimed := make(map[string]bool, len(ids))
	err := s.DB.InTx(ctx, func(q storage.Querier) error {
		clear(claimed)
		now := s.Now().UnixMilli()
		for part := range slices.Chunk(ids, idsPerStatement) {
			got, err := storage.StringSet(ctx, q, `UPDATE sms_outbox SET status = $1, attempts = attempts + 1, updated_at = $2
				WHERE id IN (`+storage.Marks(3, len(part))+`) AND status IN ('pending', 'sending') RETURNING id`,
				append([]any{StatusSending, now}, storage.Args(part)...)...)
			if err != nil {
				return err
			}
			maps.Copy(claimed, got)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark %s (and %d more) sending: %w", ids[0], len(ids)-1, err)
	}
	return claimed, nil
}

// sentText is a text the provider took, not yet recorded as sent.
type sentText struct {
	i       int // its place in the message
	m       Queued
	bundled []Queued
	sid     string
	at      time.Time
}

// send hands one claimed text or call to the provider. A text that went
// out goes on sent, for the recorder; a refused one is marked failed here.
func (s *Sender) send(ctx context.Context, i int, m Queued, sent chan<- sentText) error {
	var bundled []Queued
	var err error
	// A retried bundle goes out as it is.
	if m.Channel == ChannelSMS && m.Purpose == "offer" && m.Template != TplOfferBundle {
		if m, bundled, err = s.bundle(ctx, m); err != nil {
			return err
		}
	}
	if err := s.waitTurn(ctx); err != nil {
		return err
	}
	sid, sendErr := s.deliver(ctx, m)
	now := s.Now()
	switch {
	case sendErr == nil:
		sent <- sentText{i: i, m: m, bundled: bundled, sid: sid, at: now}
		return nil
	case IsPermanent(sendErr):
		if err := s.fail(ctx, m, bundled, sendErr, now); err != nil {
			return err
		}
		s.Metrics.SMS(m.Channel, StatusFailed, 1)
		s.textLog(m).Warn("refused by provider", "err", maskIn(sendErr.Error(), m.To))
		return nil
	default:
		s.Metrics.SMSProviderError(m.Channel)
		// A text that may have gone out stays claimed, so the next try asks
		// the provider first (sentBeforeCrash) instead of sending blindly.
		status := StatusPending
		var unknown *UnknownOutcomeError
		if m.Channel == ChannelSMS && errors.As(sendErr, &unknown) {
			status = StatusSending
		}
		log := s.textLog(m)
		if _, err := s.DB.Exec(ctx, `UPDATE sms_outbox SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1`,
			m.ID, status, sendErr.Error(), now.UnixMilli()); err != nil {
			log.Warn("record send error", "err", err)
		}
		// The bus logs the error it is given, so it goes masked too.
		masked := maskIn(sendErr.Error(), m.To)
		log.Warn("provider unavailable; will retry", "err", masked)
		return fmt.Errorf("send %s: %s", m.ID, masked)
	}
}

// recordWindow is how long the recorder waits, after a text went out, for
// the others of its message to go too, so that one write records them
// all. Texts paced by the provider's rate are recorded a window at a time.
const recordWindow = 20 * time.Millisecond

// recordSent records the texts that went out, a group a write: the first
// to arrive and those that follow within recordWindow. A group it cannot
// record sets the error of each of its texts.
func (s *Sender) recordSent(ctx context.Context, sent <-chan sentText, errs []error) {
	for first := range sent {
		group := []sentText{first}
		window := time.NewTimer(recordWindow)
	collect:
		for {
			select {
			case t, ok := <-sent:
				if !ok {
					break collect
				}
				group = append(group, t)
			case <-window.C:
				break collect
			}
		}
		window.Stop()
		if err := s.record(ctx, group); err != nil {
			for _, t := range group {
				errs[t.i] = err
			}
		}
	}
}

// record writes that the texts of group went out, with their provider ids,
// and marks the incidents whose first offer text is among them. The texts
// are out: it keeps trying (the database may be restarting) rather than
// leave the rows claimed. If that fails for good, the redelivery finds
// them claimed and asks the provider before sending (sentBeforeCrash).
func (s *Sender) record(ctx context.Context, group []sentText) error {
	firsts := map[string]time.Time{}
	for _, t := range group {
		if t.m.Channel == ChannelSMS && t.m.Purpose == "offer" {
			s.unmarkedIncidents(firsts, append([]Queued{t.m}, t.bundled...), t.at)
		}
	}
	var since []time.Duration
	err := retryDB(ctx, func() error {
		return s.DB.InTx(ctx, func(q storage.Querier) error {
			for part := range slices.Chunk(group, idsPerStatement/3) {
				if err := markSent(ctx, q, part); err != nil {
					return err
				}
			}
			var err error
			since, err = markFirstOffers(ctx, q, firsts)
			return err
		})
	})
	if err != nil {
		for _, t := range group {
			s.textLog(t.m).Error("text sent but not recorded as sent", "sid", t.sid, "err", err)
		}
		return fmt.Errorf("record %s (and %d more) sent: %w", group[0].m.ID, len(group)-1, err)
	}
	for _, t := range group {
		s.textLog(t.m).Info("sent", "sid", t.sid, "bundled", len(t.bundled))
		s.Metrics.SMS(t.m.Channel, StatusSent, 1)
	}
	s.firstOffersMarked(firsts, since)
	return nil
}

// markSent records texts as sent, each with its provider id and time, in
// one statement.
func markSent(ctx context.Context, q storage.Querier, texts []sentText) error {
	var sids, ats strings.Builder
	args := make([]any, 0, 3*len(texts))
	ids := make([]string, len(texts))
	for i, t := range texts {
		n := 3 * i
		ids[i] = fmt.Sprintf("$%d", n+1)
		fmt.Fprintf(&sids, " WHEN $%d THEN $%d", n+1, n+2)
		fmt.Fprintf(&ats, " WHEN $%d THEN CAST($%d AS BIGINT)", n+1, n+3)
		args = append(args, t.m.ID, t.sid, t.at.UnixMilli())
	}
	_, err := q.Exec(ctx, `UPDATE sms_outbox SET status = '`+StatusSent+`', last_error = '', provider_sid = CASE id`+sids.String()+` END,
		sent_at = CASE id`+ats.String()+` END, updated_at = CASE id`+ats.String()+` END
		WHERE id IN (`+strings.Join(ids, ", ")+`)`, args...)
	return err
}

// sentBeforeCrash asks the provider whether it already has the text m (a
// row left claimed by an attempt that never finished) and, if so, records
// it as sent. It reports whether it did. Providers that cannot be asked get
// the text again: a duplicate is better than a lost alert.
func (s *Sender) sentBeforeCrash(ctx context.Context, m Queued, log *slog.Logger) (bool, error) {
	finder, ok := s.Provider.(SentFinder)
	if !ok {
		return false, nil
	}
	sid, err := finder.FindSent(ctx, m.To, m.Body, m.CreatedAt)
	if err != nil {
		// Not knowing, do not send: the bus retries with backoff.
		s.Metrics.SMSProviderError(m.Channel)
		return false, fmt.Errorf("check whether %s went out before a crash: %s", m.ID, maskIn(err.Error(), m.To))
	}
	if sid == "" {
		return false, nil
	}
	now := s.Now()
	n, err := s.DB.Exec(ctx, `UPDATE sms_outbox SET status = $2, provider_sid = $3, sent_at = $4, updated_at = $4, last_error = ''
		WHERE id = $1 AND status = 'sending'`, m.ID, StatusSent, sid, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("mark %s sent: %w", m.ID, err)
	}
	log.Info("the provider already had this text from before a restart; not sending it again", "sid", sid)
	if n == 0 {
		return true, nil
	}
	s.Metrics.SMS(m.Channel, StatusSent, 1)
	if m.Purpose == "offer" {
		texts := []Queued{m}
		if folded, err := s.foldedInto(ctx, m.ID); err != nil {
			log.Warn("texts bundled into a recovered text not read", "err", err)
		} else {
			texts = append(texts, folded...)
		}
		s.firstOffers(ctx, texts, now)
	}
	return true, nil
}

// foldedInto lists the texts bundled into text id.
func (s *Sender) foldedInto(ctx context.Context, id string) ([]Queued, error) {
	return queuedWhere(ctx, s.DB, `bundled_into = $1`, id)
}

// queuedWhere lists the outbox rows matching a condition.
func queuedWhere(ctx context.Context, q storage.Querier, cond string, args ...any) ([]Queued, error) {
	rows, err := q.Query(ctx, `SELECT `+queuedColumns+` FROM sms_outbox WHERE `+cond, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Queued
	for rows.Next() {
		q, err := scanQueued(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// deliver hands the text to the provider as a text or a call.
func (s *Sender) deliver(ctx context.Context, m Queued) (string, error) {
	if m.Channel != ChannelVoice {
		var params map[string]string
		if err := json.Unmarshal([]byte(m.Params), &params); err != nil {
			return "", &PermanentError{Err: fmt.Errorf("params of %s: %w", m.ID, err)}
		}
		return s.Provider.Send(ctx, Outgoing{To: m.To, Body: m.Body, Template: m.Template, Locale: m.Locale, Params: params,
			StatusCallback: s.StatusCallback})
	}
	caller, ok := s.Provider.(Caller)
	if !ok {
		return "", &PermanentError{Err: errors.New("the SMS provider cannot place calls")}
	}
	return caller.Call(ctx, Call{To: m.To, TwiML: s.twiml(m)})
}

// twiml reads the text out and takes one key: 1 accepts, 2 declines.
func (s *Sender) twiml(m Queued) string {
	lang := "zh-CN"
	if strings.HasPrefix(m.Locale, "en") {
		lang = "en-US"
	}
	action := strings.TrimRight(s.PublicURL, "/") + "/v1/webhooks/twilio/voice?offer=" + m.Offer
	noInput := Render(TplVoiceNoInput, m.Locale, nil, false)
	return `<?xml version="1.0" encoding="UTF-8"?><Response>` +
		`<Gather numDigits="1" timeout="10" method="POST" action="` + html.EscapeString(action) + `">` +
		`<Say language="` + lang + `">` + html.EscapeString(m.Body) + `</Say></Gather>` +
		`<Say language="` + lang + `">` + html.EscapeString(noInput) + `</Say></Response>`
}

// waitTurn waits until the provider may take one more text. Live texts
// queue on the shared limiter. Bulk texts first keep to their own pace,
// then take a shared token only when one is spare now: were they to queue
// on the shared limiter too, a live text arriving after a hundred
// reminders would wait for all of them.
func (s *Sender) waitTurn(ctx context.Context) error {
	if s.Bulk == nil {
		if s.Limiter == nil {
			return nil
		}
		return s.Limiter.Wait(ctx)
	}
	if err := s.Bulk.Wait(ctx); err != nil {
		return err
	}
	if s.Limiter == nil {
		return nil
	}
	// A token comes back every 1/rate seconds; look again then.
	poll := max(time.Duration(float64(time.Second)/float64(s.Limiter.Limit())), 5*time.Millisecond)
	for !s.Limiter.Allow() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
	return nil
}

// recipientWait says how long to wait before this phone may get another
// text, or zero.
func (s *Sender) recipientWait(ctx context.Context, m Queued) (time.Duration, error) {
	limit := s.Carrier.PerRecipientPerMinute
	if limit <= 0 {
		return 0, nil
	}
	if s.Bulk != nil {
		// Reminders to a team lead must not use up the texts a live
		// incident may need to send them this minute.
		limit = max(limit/2, 1)
	}
	now := s.Now()
	rows, err := s.DB.Query(ctx, `SELECT sent_at FROM sms_outbox WHERE to_phone = $1 AND channel = 'sms' AND sent_at > $2
		ORDER BY sent_at`, m.To, now.Add(-time.Minute).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("recent texts to a phone: %w", err)
	}
	defer rows.Close()
	var sent []int64
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			return 0, err
		}
		sent = append(sent, at)
	}
	if err := rows.Err(); err != nil || len(sent) < limit {
		return 0, err
	}
	// The oldest text in the window leaves it first.
	oldest := sent[len(sent)-limit]
	return max(time.Until(time.UnixMilli(oldest).Add(time.Minute)), 100*time.Millisecond), nil
}

// sentBefore reports whether the same words reached the same phone within
// the carrier's window.
func (s *Sender) sentBefore(ctx context.Context, m Queued) (bool, error) {
	if s.Carrier.IdenticalWindow <= 0 {
		return false, nil
	}
	var n int
	// One probe a key, each an equality: with body_key IN (0, $5),
	// PostgreSQL's cached generic plan, made while the table was small,
	// sought by phone and time only and read every text a duty phone got
	// in the window, a fifth of the database's time at 50 alarms/s
	// (issue 8). body_key 0: texts queued before it existed (migration
	// 00011).
	err := s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM (
		SELECT 1 FROM sms_outbox WHERE to_phone = $1 AND body_key = $5 AND body = $2
			AND id <> $3 AND status IN ('sent', 'delivered') AND sent_at > $4
		UNION ALL
		SELECT 1 FROM sms_outbox WHERE to_phone = $1 AND body_key = 0 AND body = $2
			AND id <> $3 AND status IN ('sent', 'delivered') AND sent_at > $4) same`,
		m.To, m.Body, m.ID, s.Now().Add(-s.Carrier.IdenticalWindow).UnixMilli(), bodyKey(m.Body)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("identical texts: %w", err)
	}
	return n > 0, nil
}

// bundle folds the other offer texts still waiting for the same phone into
// this one, so a responder asked to several calls at once gets one text
// listing them, each with its own link. It returns the text to send and the
// texts folded into it.
func (s *Sender) bundle(ctx context.Context, m Queued) (Queued, []Queued, error) {
	// Most offers have nothing to fold. Look first without a transaction:
	// on SQLite a transaction takes the one write lock, and every offer
	// queued behind it (issue 8). An offer queued after this look is sent
	// on its own, as one queued after the transaction below would be.
	var waiting int
	if err := s.DB.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM sms_outbox WHERE to_phone = $1 AND purpose = 'offer'
		AND channel = 'sms' AND status = 'pending' AND id <> $2 LIMIT 1) w`, m.To, m.ID).Scan(&waiting); err != nil {
		return Queued{}, nil, fmt.Errorf("offers waiting for %s: %w", Mask(m.To), err)
	}
	if waiting == 0 {
		return m, nil, nil
	}
	var folded []Queued
	claimed := 0 // rows bundled now; folded also has those a failed bundle held
	err := s.DB.InTx(ctx, func(q storage.Querier) error {
		folded, claimed = nil, 0
		rows, err := q.Query(ctx, `SELECT `+queuedColumns+` FROM sms_outbox WHERE to_phone = $1 AND purpose = 'offer'
			AND channel = 'sms' AND status = 'pending' AND id <> $2 ORDER BY created_at, id`, m.To, m.ID)
		if err != nil {
			return err
		}
		var others []Queued
		for rows.Next() {
			o, err := scanQueued(rows)
			if err != nil {
				rows.Close()
				return err
			}
			others = append(others, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(others) == 0 {
			return err
		}
		now := s.Now().UnixMilli()
		var list strings.Builder
		count := 0
		// add lists one waiting text: an offer is one item; a bundle whose
		// sending failed (Twilio down) brings the items it already lists.
		add := func(it Queued) error {
			var params map[string]string
			if err := json.Unmarshal([]byte(it.Params), &params); err != nil {
				return fmt.Errorf("params of %s: %w", it.ID, err)
			}
			if it.Template != TplOfferBundle {
				list.WriteString(Render(TplOfferItem, m.Locale, params, false))
				count++
				return nil
			}
			n, err := strconv.Atoi(params["count"])
			if err != nil {
				return fmt.Errorf("count of bundle %s: %w", it.ID, err)
			}
			list.WriteString(params["items"])
			count += n
			return nil
		}
		if err := add(m); err != nil {
			return err
		}
		for _, o := range others {
			// Claim each row; another worker may have taken it meanwhile.
			n, err := q.Exec(ctx, `UPDATE sms_outbox SET status = $2, bundled_into = $3, updated_at = $4 WHERE id = $1 AND status = 'pending'`,
				o.ID, StatusBundled, m.ID, now)
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			if err := add(o); err != nil {
				return err
			}
			folded = append(folded, o)
			claimed++
			if o.Template != TplOfferBundle {
				continue
			}
			// The offers folded into that bundle now travel in this text: a
			// receipt or a refusal for it must reach them too. (Rendering the
			// bundle as one item lost them and left its placeholders in the
			// text; an outage test found it.)
			inner, err := queuedWhere(ctx, q, `bundled_into = $1`, o.ID)
			if err != nil {
				return err
			}
			if _, err := q.Exec(ctx, `UPDATE sms_outbox SET bundled_into = $2, updated_at = $3 WHERE bundled_into = $1`, o.ID, m.ID, now); err != nil {
				return err
			}
			folded = append(folded, inner...)
		}
		if len(folded) == 0 {
			return nil
		}
		drill := strings.HasPrefix(m.Body, DrillPrefix)
		params := map[string]string{"count": fmt.Sprint(count), "items": list.String()}
		raw, _ := json.Marshal(params)
		m.Template, m.Params = TplOfferBundle, string(raw)
		m.Body = Render(TplOfferBundle, m.Locale, params, drill)
		_, err = q.Exec(ctx, `UPDATE sms_outbox SET template = $2, params = $3, body = $4, body_key = $6, updated_at = $5 WHERE id = $1`,
			m.ID, m.Template, m.Params, m.Body, now, bodyKey(m.Body))
		return err
	})
	if err != nil {
		return Queued{}, nil, fmt.Errorf("bundle offers to %s: %w", Mask(m.To), err)
	}
	s.Metrics.SMS(ChannelSMS, StatusBundled, claimed)
	return m, folded, nil
}

// fail marks a refused text (and those bundled into it) failed and reports
// each, so the offers behind them move on.
func (s *Sender) fail(ctx context.Context, m Queued, bundled []Queued, cause error, now time.Time) error {
	var staged []events.Message
	err := s.DB.InTx(ctx, func(q storage.Querier) error {
		staged = nil
		ids := []string{m.ID}
		for _, b := range bundled {
			ids = append(ids, b.ID)
		}
		for _, id := range ids {
			row, err := Get(ctx, q, id)
			if err != nil {
				return err
			}
			if _, err := q.Exec(ctx, `UPDATE sms_outbox SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1`,
				id, StatusFailed, cause.Error(), now.UnixMilli()); err != nil {
				return err
			}
			f, err := failedEvent(row, now, cause.Error())
			if err != nil {
				return err
			}
			staged = append(staged, f)
		}
		return events.Stage(ctx, q, now, staged...)
	})
	if err != nil {
		return fmt.Errorf("mark %s failed: %w", m.ID, err)
	}
	s.Relay.Send(ctx, staged)
	return nil
}

func (s *Sender) mark(ctx context.Context, id, status, sid, note string) error {
	if _, err := s.DB.Exec(ctx, `UPDATE sms_outbox SET status = $2, provider_sid = $3, last_error = $4, updated_at = $5 WHERE id = $1`,
		id, status, sid, note, s.Now().UnixMilli()); err != nil {
		return fmt.Errorf("mark %s %s: %w", id, status, err)
	}
	return nil
}

// retryDB runs a database write that must not be dropped (what a provider
// already did) until it succeeds, for up to half a minute: long enough for
// PostgreSQL to restart or fail over. The handler keeps its message in
// progress meanwhile.
func retryDB(ctx context.Context, write func() error) error {
	wait := 100 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := write()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
