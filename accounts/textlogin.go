package accounts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/links"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms"
	"github.com/shouwang/shouwang/storage"
)

// LoginLinkTTL is how long a texted sign-in link works (once).
const LoginLinkTTL = 15 * time.Minute

// loginTextEvery is the least time between two sign-in texts to one phone:
// pressing "send" again and again must not flood a resident or the bill.
const loginTextEvery = time.Minute

// errTextedAlready rolls back a link whose text another request queued in
// the same minute.
var errTextedAlready = errors.New("a sign-in text went to this phone this minute")

// TextLoginLink texts the resident registered with phone a one-tap link
// that signs them in. community picks the registration when the phone is
// registered in several communities; empty takes the one changed last.
// An unregistered phone gets nothing and is not an error: the caller must
// not learn who is registered. At most one text a minute goes to a phone.
// A number that is not a mobile number at all is a validation error.
func (a *Accounts) TextLoginLink(ctx context.Context, phone, community string) error {
	phone, ok := responders.NormalizePhone(phone)
	if !ok {
		return errdefs.Invalid("phone", "a mobile number such as 13800000000 or +8613800000000")
	}
	now := a.Now()
	err := a.Relay.Commit(ctx, func(q storage.Querier) ([]events.Message, error) {
		r, err := responders.ResidentByPhone(ctx, q, phone, community)
		if errors.Is(err, errdefs.ErrNotFound) {
			a.Log.Info("sign-in text asked for a phone no resident has", "phone", sms.Mask(phone), "community", community)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var recent int
		if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM sms_outbox WHERE to_phone = $1 AND template = $2 AND created_at > $3`,
			phone, sms.TplLoginLink, now.Add(-loginTextEvery).UnixMilli()).Scan(&recent); err != nil {
			return nil, fmt.Errorf("recent sign-in texts: %w", err)
		}
		if recent > 0 {
			return nil, errTextedAlready
		}
		token, err := links.Issue(ctx, q, links.KindLogin, r.ID, r.Community, r.Locale, now, now.Add(LoginLinkTTL))
		if err != nil {
			return nil, err
		}
		// The key also holds back a second replica answering the same
		// minute's request at the same moment.
		m, queued, err := sms.Enqueue(ctx, q, now, sms.Text{
			Key: "login:" + phone + ":" + strconv.FormatInt(now.Unix()/60, 10), Community: r.Community, To: phone,
			Template: sms.TplLoginLink, Locale: r.Locale, Purpose: "login",
			Params: map[string]string{"link": a.LinkBase + "/o/" + token, "minutes": strconv.Itoa(int(LoginLinkTTL.Minutes()))},
		})
		if err != nil {
			return nil, err
		}
		if !queued {
			return nil, errTextedAlready
		}
		a.Log.Info("sign-in link texted", "resident", r.ID, "community", r.Community, "phone", sms.Mask(phone))
		return []events.Message{m}, nil
	})
	if errors.Is(err, errTextedAlready) {
		a.Log.Info("sign-in text asked for again within a minute; not sent", "phone", sms.Mask(phone))
		return nil
	}
	if err != nil {
		return fmt.Errorf("text sign-in link: %w", err)
	}
	return nil
}

// SignInByLink uses a texted sign-in link, once, and starts the resident's
// session. An unknown link is ErrNotFound; a used one links.ErrUsed; an
// expired one links.ErrExpired.
func (a *Accounts) SignInByLink(ctx context.Context, token string) (Session, string, error) {
	now := a.Now()
	var s Session
	var cookie string
	err := a.DB.InTx(ctx, func(q storage.Querier) error {
		l, err := links.Consume(ctx, q, token, now)
		if err != nil {
			return err
		}
		if l.Kind != links.KindLogin {
			return fmt.Errorf("a %s link signs nobody in: %w", l.Kind, errdefs.ErrNotFound)
		}
		r, err := responders.ResidentIn(ctx, q, l.Community, l.Target)
		if err != nil {
			return err
		}
		s, cookie, err = a.startSession(ctx, q, now, Session{Role: RoleResident, Community: r.Community, Subject: r.ID, Name: r.Name})
		return err
	})
	if err != nil {
		return Session{}, "", err
	}
	a.Log.Info("resident signed in by link", "resident", s.Subject, "community", s.Community)
	return s, cookie, nil
}
