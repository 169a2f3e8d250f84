// Package cap publishes incidents as OASIS Common Alerting Protocol 1.2
// messages and an Atom feed of them, for public alerting platforms and the
// district's emergency systems. It is interop, not incident handling: it
// maps an incident to a message and does no I/O.
//
// A CAP message is public. Nothing about a person goes in: no names, phone
// numbers, flat addresses or notes; the area's centre is rounded so it does
// not point at one building.
package cap

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strings"
	"time"
	_ "time/tzdata" // Asia/Shanghai must resolve in a bare container

	"github.com/shouwang/shouwang/events"
	"github.com/shouwang/shouwang/incidents"
)

// Namespace is the CAP 1.2 XML namespace.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// ContentType is the media type of a CAP document.
const ContentType = "application/cap+xml"

// The values of status, msgType and scope we send.
const (
	StatusActual   = "Actual"
	StatusExercise = "Exercise" // a drill

	MsgAlert  = "Alert"
	MsgUpdate = "Update" // the all-clear after an incident is resolved
	MsgCancel = "Cancel" // the alarm was withdrawn

	ScopePublic     = "Public"
	ScopeRestricted = "Restricted"
)

// zone is the offset CAP times carry: communities are in China, where
// local time is what people read on the alert.
var zone = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	z, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return z
}

// FormatTime writes t as CAP wants it: local time with a numeric offset and
// no fraction ("2026-11-22T15:04:05+08:00"; "Z" is not allowed).
func FormatTime(t time.Time) string {
	return t.In(zone).Format("2006-01-02T15:04:05-07:00")
}

// Alert is a CAP 1.2 <alert>. Field order is the schema's sequence.
type Alert struct {
	XMLName     xml.Name `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier  string   `xml:"identifier"`
	Sender      string   `xml:"sender"`
	Sent        string   `xml:"sent"`
	Status      string   `xml:"status"`
	MsgType     string   `xml:"msgType"`
	Scope       string   `xml:"scope"`
	Restriction string   `xml:"restriction,omitempty"`
	Note        string   `xml:"note,omitempty"`
	References  string   `xml:"references,omitempty"`
	Incidents   string   `xml:"incidents,omitempty"`
	Info        []Info   `xml:"info"`
}

// Info is one <info> block: the alert in one language.
type Info struct {
	Language     string   `xml:"language"`
	Category     []string `xml:"category"`
	Event        string   `xml:"event"`
	ResponseType []string `xml:"responseType,omitempty"`
	Urgency      string   `xml:"urgency"`
	Severity     string   `xml:"severity"`
	Certainty    string   `xml:"certainty"`
	Onset        string   `xml:"onset,omitempty"`
	Expires      string   `xml:"expires,omitempty"`
	SenderName   string   `xml:"senderName,omitempty"`
	Headline     string   `xml:"headline,omitempty"`
	Description  string   `xml:"description,omitempty"`
	Instruction  string   `xml:"instruction,omitempty"`
	Area         []Area   `xml:"area"`
}

// Area is where the alert applies.
type Area struct {
	AreaDesc string   `xml:"areaDesc"`
	Circle   []string `xml:"circle"`
}

// Marshal writes the alert as a UTF-8 XML document.
func (a Alert) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("encode CAP alert %s: %w", a.Identifier, err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// Severity maps the national levels to CAP: I 特别重大 Extreme, II 重大
// Severe, III 较大 Moderate, IV 一般 Minor.
func Severity(s events.Severity) string {
	switch s {
	case 1:
		return "Extreme"
	case 2:
		return "Severe"
	case 3:
		return "Moderate"
	case 4:
		return "Minor"
	}
	return "Unknown"
}

// Community is what an alert says about where: the community's names.
type Community struct {
	Name   string
	NameEN string // may be empty: the Chinese name is used
}

func (c Community) in(lang string) string {
	if lang == langEN && c.NameEN != "" {
		return c.NameEN
	}
	return c.Name
}

// Identifier names the message for an incident's state: the alert while it
// is active, and one message each for its all-clear and its cancellation.
// The same state always gives the same identifier (and the same document),
// so a platform that fetches twice sees one message, not two.
func Identifier(in incidents.Incident) string {
	switch in.Status {
	case incidents.StatusResolved:
		return alertIdentifier(in) + "-allclear"
	case incidents.StatusCancelled:
		return alertIdentifier(in) + "-cancel"
	}
	return alertIdentifier(in)
}

// alertIdentifier names the first message about an incident, the one its
// all-clear or cancellation refers to.
func alertIdentifier(in incidents.Incident) string { return "shouwang-" + in.ID }

// msgType is what the incident's state says: an alert while it is active.
func msgType(s incidents.Status) string {
	switch s {
	case incidents.StatusResolved:
		return MsgUpdate
	case incidents.StatusCancelled:
		return MsgCancel
	}
	return MsgAlert
}

const (
	langZH = "zh-CN"
	langEN = "en-US"
)

// Build maps an incident of type it in community to the CAP message for
// its current state. sender names us (a domain). Active incidents are an
// Alert; a resolved one is an Update with responseType AllClear and
// urgency Past; a cancelled one (the caller was safe) is a Cancel. Both
// refer to the original alert. Drills are status Exercise. Types that are
// not public get scope Restricted.
func Build(in incidents.Incident, it events.IncidentType, c Community, sender string) Alert {
	a := Alert{
		Identifier: Identifier(in),
		Sender:     sender,
		Sent:       FormatTime(in.OpenedAt),
		Status:     StatusActual,
		MsgType:    msgType(in.Status),
		Scope:      ScopePublic,
		Incidents:  in.ID,
	}
	if in.Drill {
		a.Status, a.Note = StatusExercise, "演练，非真实事件。Drill: not a real emergency."
	}
	if !it.CAP.Public {
		a.Scope = ScopeRestricted
		a.Restriction = "仅限社区应急人员。For the community's emergency staff only."
	}
	if a.MsgType != MsgAlert {
		// "sender,identifier,sent" of the alert this one updates or cancels.
		a.Sent = FormatTime(in.ClosedAt)
		a.References = strings.Join([]string{sender, alertIdentifier(in), FormatTime(in.OpenedAt)}, ",")
	}
	for _, lang := range []string{langZH, langEN} {
		a.Info = append(a.Info, info(in, it, c, lang, a.MsgType))
	}
	return a
}

func info(in incidents.Incident, it events.IncidentType, c Community, lang, msgType string) Info {
	conf := it.CAP
	zh := lang == langZH
	pick := func(l events.Label) string {
		if zh {
			return l.ZH
		}
		return l.EN
	}
	place := c.in(lang)
	event := pick(conf.Event)
	opened := in.OpenedAt.In(zone)
	inf := Info{
		Language:     lang,
		Category:     []string{conf.Category},
		Event:        event,
		ResponseType: conf.ResponseType,
		Urgency:      conf.Urgency,
		Severity:     Severity(in.Severity),
		Certainty:    conf.Certainty,
		Onset:        FormatTime(in.OpenedAt),
		Instruction:  pick(conf.Instruction),
		Area:         []Area{area(in, conf, place, zh)},
	}
	if zh {
		inf.SenderName = "守望 · " + place
		inf.Headline = place + "：" + event
		inf.Description = fmt.Sprintf("%s居民报告%s（首报时间 %s）。社区应急人员正在处置。", place, event, opened.Format("1月2日 15:04"))
	} else {
		inf.SenderName = "Shouwang · " + place
		inf.Headline = event + ": " + place
		inf.Description = fmt.Sprintf("%s reported by residents of %s (first report %s, UTC+8). Community responders are dealing with it.",
			event, place, opened.Format("2 Jan 15:04"))
	}
	closedAt := in.ClosedAt.In(zone)
	switch msgType {
	case MsgUpdate:
		inf.ResponseType, inf.Urgency, inf.Certainty = []string{"AllClear"}, "Past", "Observed"
		// In force as long as the feed lists it.
		inf.Expires = FormatTime(in.ClosedAt.Add(FeedWindow))
		if zh {
			inf.Headline = place + "：" + event + "警报解除"
			inf.Description = fmt.Sprintf("%s的%s已于 %s 处置完毕。", place, event, closedAt.Format("1月2日 15:04"))
			inf.Instruction = "险情已解除，可恢复正常活动。请继续留意社区通知。"
		} else {
			inf.Headline = "All clear: " + strings.ToLower(event) + " in " + place
			inf.Description = fmt.Sprintf("The %s in %s was dealt with at %s (UTC+8).", strings.ToLower(event), place, closedAt.Format("2 Jan 15:04"))
			inf.Instruction = "The danger is over; you can go back to normal. Keep following the community's notices."
		}
	case MsgCancel:
		inf.ResponseType, inf.Urgency, inf.Certainty = []string{"None"}, "Past", "Unlikely"
		inf.Expires = FormatTime(in.ClosedAt.Add(FeedWindow))
		if zh {
			inf.Headline = place + "：" + event + "警报撤销"
			inf.Description = fmt.Sprintf("%s的%s报警已于 %s 撤销，无需采取行动。", place, event, closedAt.Format("1月2日 15:04"))
			inf.Instruction = "此前的警报已撤销，无需采取行动。"
		} else {
			inf.Headline = "Withdrawn: " + strings.ToLower(event) + " alert for " + place
			inf.Description = fmt.Sprintf("The %s alert for %s was withdrawn at %s (UTC+8); no action is needed.", strings.ToLower(event), place, closedAt.Format("2 Jan 15:04"))
			inf.Instruction = "The earlier alert was withdrawn; no action is needed."
		}
	}
	if in.Drill {
		if zh {
			inf.Headline = "【演练】" + inf.Headline
		} else {
			inf.Headline = "[DRILL] " + inf.Headline
		}
	}
	return inf
}

// centreStep is how coarsely the area's centre is given: 0.001° is about
// 110 m north–south and 95 m east–west in Shanghai, enough not to point at
// one building. The circle grows by roundingSlackM so it still covers the
// configured radius around the real point.
const (
	centreStep     = 1000.0 // 1 / 0.001°
	roundingSlackM = 100
)

func area(in incidents.Incident, conf events.CAP, place string, zh bool) Area {
	lat := math.Round(in.Location.Lat*centreStep) / centreStep
	lng := math.Round(in.Location.Lng*centreStep) / centreStep
	// In tenths of a kilometre, so the text reads "0.9", not "0.9000000000000001".
	tenths := math.Ceil((conf.AreaRadiusM + roundingSlackM) / 100)
	km := tenths / 10
	desc := fmt.Sprintf("%s及周边约%g公里", place, km)
	if !zh {
		desc = fmt.Sprintf("%s and about %g km around", place, km)
	}
	return Area{AreaDesc: desc, Circle: []string{fmt.Sprintf("%.3f,%.3f %.1f", lat, lng, km)}}
}
