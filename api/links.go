package api

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/errdefs"
	"github.com/shouwang/shouwang/incidents"
	"github.com/shouwang/shouwang/links"
	"github.com/shouwang/shouwang/plans"
	"github.com/shouwang/shouwang/responders"
	"github.com/shouwang/shouwang/sms"
)

//go:embed pages/link.html
var pageFiles embed.FS

var linkPage = template.Must(template.ParseFS(pageFiles, "pages/link.html"))

// pageText is every word the link page shows, per language.
type pageText struct {
	Title, Unknown, Expired, ExpiredHelp                         string
	Accept, Decline, Arrived, Safe                               string
	Type, Address, Distance, Status                              string
	Accepted, Declined, ArrivedDone, Closed, Cancelled, SafeNote string
	OfferOpen, AlarmOpen, Ended                                  string
	DutyOpen, Ack, Done, Acked, DutyDone, Instructions, Due      string
	SignIn, SignInHelp, SignInButton, SignInUsed                 string
}

var pageTexts = map[string]pageText{
	"zh-CN": {
		Title: "守望 · 社区应急", Unknown: "链接无效", Expired: "链接已过期",
		ExpiredHelp: "此链接已失效。如仍需帮助，请拨打社区应急中心电话或 110 / 119 / 120。",
		Accept:      "接受，我去", Decline: "拒绝，去不了", Arrived: "我已到达现场", Safe: "我安全，取消求助",
		Type: "类型", Address: "地址", Distance: "距离", Status: "状态",
		Accepted: "已确认由您前往，请注意安全。", Declined: "已记录您无法前往，谢谢。", ArrivedDone: "已记录您到达现场。",
		Closed: "该求助已无需您前往，谢谢。", Cancelled: "已取消求助，已通知志愿者。", SafeNote: "已记录您安全。其他居民的求助仍在处理中。",
		OfferOpen: "有人需要帮助", AlarmOpen: "您的求助正在处理", Ended: "求助已结束",
		DutyOpen: "预案任务", Ack: "确认收到", Done: "已完成", Acked: "已确认，完成后请点“已完成”。", DutyDone: "已记录完成，谢谢。",
		Instructions: "要求", Due: "时限",
		SignIn: "登录守望", SignInHelp: "点下面的按钮登录。此链接只能用一次。", SignInButton: "登录",
		SignInUsed: "此登录链接已用过或已过期。请回到守望页面，重新获取登录短信。",
	},
	"en": {
		Title: "Shouwang · community emergency", Unknown: "Link not valid", Expired: "Link expired",
		ExpiredHelp: "This link no longer works. If you still need help, call the community emergency center or 110 / 119 / 120.",
		Accept:      "Accept, I am going", Decline: "Decline, I cannot go", Arrived: "I am on scene", Safe: "I am safe, cancel",
		Type: "Type", Address: "Address", Distance: "Distance", Status: "Status",
		Accepted: "Confirmed: you are going. Stay safe.", Declined: "Noted that you cannot go. Thank you.", ArrivedDone: "Noted that you are on scene.",
		Closed: "You are no longer needed for this call. Thank you.", Cancelled: "Your call is cancelled; responders were told.",
		SafeNote:  "Noted that you are safe. Other residents' calls are still being handled.",
		OfferOpen: "Someone needs help", AlarmOpen: "Your call is being handled", Ended: "This call is over",
		DutyOpen: "Plan duty", Ack: "Confirm", Done: "Done", Acked: "Confirmed. Tap Done when it is done.", DutyDone: "Recorded as done. Thank you.",
		Instructions: "What to do", Due: "Within",
		SignIn: "Sign in to Shouwang", SignInHelp: "Tap the button to sign in. This link works once.", SignInButton: "Sign in",
		SignInUsed: "This sign-in link was used already or has expired. Go back to the Shouwang page and ask for a new text.",
	},
}

type pageDetail struct{ Label, Value string }
type pageAction struct{ Value, Label, Class string }

type pageData struct {
	Lang, Heading, Message, MessageClass string
	T                                    pageText
	Details                              []pageDetail
	Actions                              []pageAction
}

func pageLang(c *fiber.Ctx, linkLocale string) string {
	if strings.HasPrefix(linkLocale, "en") || c.Query("lang") == "en" {
		return "en"
	}
	return "zh-CN"
}

func renderPage(c *fiber.Ctx, status int, d pageData) error {
	var b strings.Builder
	if err := linkPage.Execute(&b, d); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	// The token is in the URL: never leak it to another site.
	c.Set("Referrer-Policy", "no-referrer")
	return c.Status(status).SendString(b.String())
}

// outcomeText turns an outcome into words on the page.
func outcomeText(t pageText, outcome string) (string, string) {
	switch outcome {
	case responders.OutcomeAccepted:
		return t.Accepted, "done"
	case responders.OutcomeDeclined:
		return t.Declined, "done"
	case responders.OutcomeArrived:
		return t.ArrivedDone, "done"
	case responders.OutcomeCancelled:
		return t.Cancelled, "done"
	case responders.OutcomeSafeNoted:
		return t.SafeNote, "done"
	case responders.OutcomeClosed:
		return t.Closed, "gone"
	case plans.OutcomeAcknowledged:
		return t.Acked, "done"
	case plans.OutcomeDone:
		return t.DutyDone, "done"
	}
	return "", ""
}

// linkGet shows what a one-tap link is for and the buttons that still make
// sense. No sign-in: the token is the key.
func (s *server) linkGet(c *fiber.Ctx) error {
	return s.linkPage(c, c.Query("done"))
}

// linkPost applies a button, then shows the page again (post/redirect/get,
// so reloading does not submit twice).
func (s *server) linkPost(c *fiber.Ctx) error {
	ctx := c.UserContext()
	token := c.Params("token")
	l, err := links.Resolve(ctx, s.DB, token, s.Now())
	if err != nil {
		return s.linkPage(c, "")
	}
	if l.Kind == links.KindLogin {
		return s.loginByLink(c, token)
	}
	action := c.FormValue("action")
	var outcome string
	switch l.Kind {
	case links.KindOffer:
		reply := map[string]sms.Reply{"accept": sms.ReplyAccept, "decline": sms.ReplyDecline, "arrived": sms.ReplyArrived}[action]
		if reply == sms.ReplyUnknown {
			return fieldError(fiber.StatusBadRequest, "action", "accept, decline or arrived")
		}
		_, outcome, err = s.Dispatcher.AnswerOffer(ctx, l.Target, reply, "responder by link")
	case links.KindAlarm:
		if action != "safe" {
			return fieldError(fiber.StatusBadRequest, "action", "safe")
		}
		_, outcome, err = s.Dispatcher.CancelByReporter(ctx, l.Target, "by link")
	case links.KindDuty:
		if action != "ack" && action != "done" {
			return fieldError(fiber.StatusBadRequest, "action", "ack or done")
		}
		_, outcome, err = s.Runner.Act(ctx, l.Target, action == "done", "duty holder by link")
	}
	if err != nil {
		return err
	}
	if err := links.MarkUsed(ctx, s.DB, token, s.Now()); err != nil {
		s.Log.Warn("mark link used", "err", err)
	}
	return c.Redirect("/o/"+token+"?done="+outcome, fiber.StatusSeeOther)
}

func (s *server) linkPage(c *fiber.Ctx, done string) error {
	ctx := c.UserContext()
	l, err := links.Resolve(ctx, s.DB, c.Params("token"), s.Now())
	lang := pageLang(c, l.Locale)
	t := pageTexts[lang]
	d := pageData{Lang: lang, T: t}
	switch {
	case l.Kind == links.KindLogin && (errors.Is(err, links.ErrExpired) || (err == nil && !l.UsedAt.IsZero())):
		// A sign-in link works once.
		d.Heading, d.Message, d.MessageClass = t.Expired, t.SignInUsed, "gone"
		return renderPage(c, fiber.StatusGone, d)
	case errors.Is(err, links.ErrExpired):
		d.Heading, d.Message, d.MessageClass = t.Expired, t.ExpiredHelp, "gone"
		return renderPage(c, fiber.StatusGone, d)
	case errors.Is(err, errdefs.ErrNotFound):
		d.Heading, d.Message, d.MessageClass = t.Unknown, t.ExpiredHelp, "gone"
		return renderPage(c, fiber.StatusNotFound, d)
	case err != nil:
		return err
	}
	d.Message, d.MessageClass = outcomeText(t, done)
	switch l.Kind {
	case links.KindOffer:
		err = s.offerPage(c, l, &d)
	case links.KindAlarm:
		err = s.alarmPage(c, l, &d)
	case links.KindDuty:
		err = s.dutyPage(c, l, &d)
	case links.KindLogin:
		// A button, not a sign-in: link scanners in messaging apps open
		// links, and must not use up a single-use one.
		d.Heading, d.Message = t.SignIn, t.SignInHelp
		d.Actions = []pageAction{{"login", t.SignInButton, "yes"}}
	}
	if err != nil {
		return err
	}
	return renderPage(c, fiber.StatusOK, d)
}

func (s *server) incidentDetails(d *pageData, in incidents.Incident) {
	it, _ := s.Tax.Type(in.Type)
	d.Details = append(d.Details, pageDetail{d.T.Type, it.Label.In(d.Lang)})
	if in.Address != "" {
		d.Details = append(d.Details, pageDetail{d.T.Address, in.Address})
	}
}

func (s *server) offerPage(c *fiber.Ctx, l links.Link, d *pageData) error {
	ctx := c.UserContext()
	o, err := s.Dispatcher.GetOffer(ctx, l.Target)
	if err != nil {
		return err
	}
	in, err := incidents.Get(ctx, s.DB, o.Incident)
	if err != nil {
		return err
	}
	d.Heading = d.T.OfferOpen
	s.incidentDetails(d, in)
	d.Details = append(d.Details, pageDetail{d.T.Distance, distanceText(o.DistanceM, d.Lang)})
	switch {
	case !in.Status.Active():
		d.Heading = d.T.Ended
	case o.Open() && in.Accepted < in.Needed:
		d.Actions = []pageAction{{"accept", d.T.Accept, "yes"}, {"decline", d.T.Decline, "no"}}
	case o.Status == responders.OfferAccepted && o.ArrivedAt.IsZero():
		d.Actions = []pageAction{{"arrived", d.T.Arrived, "here"}}
	}
	if d.Message == "" && len(d.Actions) == 0 {
		msg, class := outcomeText(d.T, offerOutcome(o))
		if msg == "" || !in.Status.Active() {
			msg, class = d.T.Closed, "gone"
		}
		d.Message, d.MessageClass = msg, class
	}
	return nil
}

// offerOutcome says what an offer's state means to the person holding it.
func offerOutcome(o responders.Offer) string {
	switch {
	case o.Status == responders.OfferAccepted && !o.ArrivedAt.IsZero():
		return responders.OutcomeArrived
	case o.Status == responders.OfferAccepted:
		return responders.OutcomeAccepted
	case o.Status == responders.OfferDeclined:
		return responders.OutcomeDeclined
	}
	return responders.OutcomeClosed
}

func (s *server) alarmPage(c *fiber.Ctx, l links.Link, d *pageData) error {
	ctx := c.UserContext()
	var incidentID string
	if err := s.DB.QueryRow(ctx, `SELECT incident_id FROM alarms WHERE id = $1`, l.Target).Scan(&incidentID); err != nil {
		return err
	}
	in, err := incidents.Get(ctx, s.DB, incidentID)
	if err != nil {
		return err
	}
	d.Heading = d.T.AlarmOpen
	s.incidentDetails(d, in)
	if in.Status.Active() {
		if d.Message == "" {
			d.Actions = []pageAction{{"safe", d.T.Safe, "safe"}}
		}
	} else {
		d.Heading = d.T.Ended
	}
	return nil
}

func distanceText(m float64, lang string) string {
	switch {
	case m >= 1000 && lang == "en":
		return fmt.Sprintf("%.1f km", m/1000)
	case m >= 1000:
		return fmt.Sprintf("%.1f 公里", m/1000)
	case lang == "en":
		return fmt.Sprintf("%.0f m", m)
	default:
		return fmt.Sprintf("%.0f 米", m)
	}
}

func (s *server) dutyPage(c *fiber.Ctx, l links.Link, d *pageData) error {
	ctx := c.UserContext()
	duty, err := s.Runner.Get(ctx, l.Target)
	if err != nil {
		return err
	}
	in, err := incidents.Get(ctx, s.DB, duty.Incident)
	if err != nil {
		return err
	}
	d.Heading = d.T.DutyOpen + "：" + duty.Title.In(d.Lang)
	s.incidentDetails(d, in)
	if ins := duty.Instructions.In(d.Lang); ins != "" {
		d.Details = append(d.Details, pageDetail{d.T.Instructions, ins})
	}
	d.Details = append(d.Details, pageDetail{d.T.Due, fmt.Sprintf("%g min", duty.DueMinutes)})
	switch {
	case !in.Status.Active():
		d.Heading = d.T.Ended
	case duty.Status == plans.DutyDone:
		if d.Message == "" {
			d.Message, d.MessageClass = d.T.DutyDone, "done"
		}
	case duty.Status == plans.DutyPending:
	default:
		if duty.AckedAt.IsZero() {
			d.Actions = append(d.Actions, pageAction{"ack", d.T.Ack, "here"})
		}
		d.Actions = append(d.Actions, pageAction{"done", d.T.Done, "yes"})
	}
	return nil
}
