package sms

import (
	"sort"
	"strings"
)

// Template is one named message in the languages we ship. Every text the
// service sends comes from here, so operators can register them with a
// carrier and translators can see them all in one place.
type Template struct {
	ZH string
	EN string
}

// Template names.
const (
	TplOffer          = "offer"
	TplAcceptConfirm  = "accept_confirm"
	TplDeclineConfirm = "decline_confirm"
	TplOfferClosed    = "offer_closed"
	TplNoOpenOffer    = "no_open_offer"
	TplUnknownReply   = "unknown_reply"
	TplStandDown      = "stand_down"
	TplEscalate       = "escalate"
	TplResolved       = "resolved"
)

// Templates are the texts; {name} is replaced by a parameter. The [ref] at
// the end makes texts about different incidents differ, which carriers want.
var Templates = map[string]Template{
	TplOffer: {
		ZH: "【守望】{type}求助：{address}，距您约{distance}。回复 1 接受，2 拒绝。[{ref}]",
		EN: "[Shouwang] {type}: {address}, about {distance} from you. Reply 1 to accept, 2 to decline. [{ref}]",
	},
	TplAcceptConfirm: {
		ZH: "【守望】已确认由您前往{type}现场：{address}。请注意安全。[{ref}]",
		EN: "[Shouwang] Confirmed: you are going to the {type} at {address}. Stay safe. [{ref}]",
	},
	TplDeclineConfirm: {
		ZH: "【守望】已收到您无法前往，谢谢告知。[{ref}]",
		EN: "[Shouwang] Noted that you cannot go. Thank you. [{ref}]",
	},
	TplOfferClosed: {
		ZH: "【守望】该求助已无需您前往（已有足够人员或已结束），谢谢。[{ref}]",
		EN: "[Shouwang] You are no longer needed for this call (enough responders, or it is over). Thank you. [{ref}]",
	},
	TplNoOpenOffer: {
		ZH: "【守望】目前没有需要您回复的求助。",
		EN: "[Shouwang] There is no open call for you to answer.",
	},
	TplUnknownReply: {
		ZH: "【守望】未能识别您的回复。回复 1 接受，2 拒绝。",
		EN: "[Shouwang] Reply not understood. Reply 1 to accept, 2 to decline.",
	},
	TplStandDown: {
		ZH: "【守望】{type}求助（{address}）已有足够人员响应，您无需前往，谢谢。[{ref}]",
		EN: "[Shouwang] Enough people are responding to the {type} at {address}; you can stand down. Thank you. [{ref}]",
	},
	TplEscalate: {
		ZH: "【守望】{type}警情无人接应：{address}，已联系{offered}人，无人接受。请应急中心立即调度。[{ref}]",
		EN: "[Shouwang] Nobody accepted the {type} at {address} ({offered} asked). Emergency center, please dispatch now. [{ref}]",
	},
	TplResolved: {
		ZH: "【守望】{type}事件（{address}）已处置完毕，您无需前往，谢谢。[{ref}]",
		EN: "[Shouwang] The {type} at {address} is resolved; you can stand down. Thank you. [{ref}]",
	},
}

// DrillPrefix starts every text sent during a drill.
const DrillPrefix = "【演练】"

// Render fills a template for a locale ("zh-CN" unless it starts with "en").
func Render(name, locale string, params map[string]string, drill bool) string {
	t, ok := Templates[name]
	if !ok {
		// A programming error; still send something rather than nothing.
		t = Template{ZH: name, EN: name}
	}
	text := t.ZH
	if strings.HasPrefix(locale, "en") {
		text = t.EN
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, "{"+k+"}", params[k])
	}
	text = strings.NewReplacer(pairs...).Replace(text)
	if drill {
		text = DrillPrefix + text
	}
	return text
}

// Mask hides the middle of a phone number for logs: +86138****5678.
func Mask(phone string) string {
	if len(phone) <= 7 {
		return "****"
	}
	return phone[:len(phone)-8] + "****" + phone[len(phone)-4:]
}
