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
	TplCancelled      = "cancelled"
	TplArrivedConfirm = "arrived_confirm"
	TplOfferBundle    = "offer_bundle"
	TplOfferItem      = "offer_item"

	// A dispatcher's actions on the console.
	TplManualAssign = "manual_assign"
	TplFalseAlarm   = "false_alarm"
	TplDrillMarked  = "drill_marked" // sent with the drill prefix

	// To the resident who pressed.
	TplAlarmReceived    = "alarm_received"
	TplResponderComing  = "responder_coming"
	TplResponderArrived = "responder_arrived"
	TplSafeCancelled    = "safe_cancelled"
	TplSafeNoted        = "safe_noted"

	// Alarms raised by texting the community number.
	TplSMSAlarmReceived  = "sms_alarm_received"
	TplSMSAlarmHelp      = "sms_alarm_help"
	TplSMSNotRegistered  = "sms_not_registered"
	TplSMSStrangerCenter = "sms_stranger_center"

	// Duties from a contingency plan.
	TplDutyAssigned   = "duty_assigned"
	TplDutyResident   = "duty_resident"
	TplDutyAckConfirm = "duty_ack_confirm"
	TplDutyDone       = "duty_done_confirm"
	TplDutyOverdue    = "duty_overdue"
	TplDutyUnassigned = "duty_unassigned"

	// Read out on a call; the keypad answers.
	TplVoiceOffer    = "voice_offer"
	TplVoiceNoInput  = "voice_no_input"
	TplVoiceAccepted = "voice_accepted"
	TplVoiceDeclined = "voice_declined"
	TplVoiceClosed   = "voice_closed"

	// Weekly coverage summary to the emergency center.
	TplReadinessGaps = "readiness_gaps"
	TplReadinessOK   = "readiness_ok"

	// Drills, to the emergency center (the drill prefix is added).
	TplDrillStarted = "drill_started"
	TplDrillReport  = "drill_report"

	// Reminders (sent as bulk texts): training budgets and certificates.
	TplBudgetSeason     = "budget_season"
	TplBudget80         = "budget_80"
	TplBudget100        = "budget_100"
	TplTrainingIdle     = "training_idle"
	TplCertExpiring     = "cert_expiring"
	TplCertExpiringLead = "cert_expiring_lead"

	// A resident signing in on the web page: a one-tap, single-use link.
	TplLoginLink = "login_link"
)

// Templates are the texts; {name} is replaced by a parameter. The [ref] at
// the end makes texts about different incidents differ, which carriers want.
var Templates = map[string]Template{
	TplOffer: {
		ZH: "【守望】{type}求助：{address}，距您约{distance}。点击 {link} 接受或拒绝，或回复 1 接受，2 拒绝。[{ref}]",
		EN: "[Shouwang] {type}: {address}, about {distance} from you. Tap {link} to accept or decline, or reply 1 to accept, 2 to decline. [{ref}]",
	},
	TplOfferBundle: {
		ZH: "【守望】您有{count}个求助待回复：{items}请点击各自链接接受或拒绝。",
		EN: "[Shouwang] {count} calls need your answer: {items}Tap each link to accept or decline.",
	},
	TplOfferItem: {
		ZH: "{type}，{address}，约{distance} {link} [{ref}]；",
		EN: "{type}, {address}, about {distance} {link} [{ref}]; ",
	},
	TplArrivedConfirm: {
		ZH: "【守望】已记录您到达现场，谢谢。[{ref}]",
		EN: "[Shouwang] Noted that you are on scene. Thank you. [{ref}]",
	},
	TplCancelled: {
		ZH: "【守望】{type}求助（{address}）已由求助人取消，您无需前往，谢谢。[{ref}]",
		EN: "[Shouwang] The {type} call at {address} was cancelled by the person who raised it; you can stand down. Thank you. [{ref}]",
	},
	TplAlarmReceived: {
		ZH: "【守望】已收到您的{type}求助，正在通知附近的志愿者。如您已安全，回复“我安全”或点击 {link} 取消。[{ref}]",
		EN: "[Shouwang] Your {type} alarm was received; nearby responders are being alerted. If you are safe, reply SAFE or tap {link} to cancel. [{ref}]",
	},
	TplSMSAlarmReceived: {
		ZH: "【守望】已收到您的{type}报警，地址：{address}，正在通知附近的救援人员。如您已安全，回复“我安全”或点击 {link} 取消。[{ref}]",
		EN: "[Shouwang] Your {type} alarm was received for {address}; nearby responders are being alerted. If you are safe, reply SAFE or tap {link} to cancel. [{ref}]",
	},
	TplSMSAlarmHelp: {
		ZH: "【守望】未能识别您的短信。报警请只回复一个词：火、救命、急救、燃气、漏水、可疑；紧急情况请直接拨打110、119、120。",
		EN: "[Shouwang] Text not understood. To raise an alarm reply one word: FIRE, HELP, MEDICAL, GAS, FLOOD or BOMB; in an emergency call 110, 119 or 120.",
	},
	TplSMSNotRegistered: {
		ZH: "【守望】您的号码未登记为社区居民，无法通过短信报警。紧急情况请立即拨打110（报警）、119（火警）、120（急救）。",
		EN: "[Shouwang] Your number is not registered with the community, so a text cannot raise an alarm. In an emergency call 110 (police), 119 (fire) or 120 (ambulance) now.",
	},
	TplSMSStrangerCenter: {
		ZH: "【守望】未登记为居民的号码{phone}向社区短信号码发来：“{body}”。已回复其拨打110/119/120，请应急中心回电核实。",
		EN: "[Shouwang] {phone}, not registered as a resident, texted the community number: \"{body}\". They were told to call 110/119/120; emergency center, please call them back.",
	},
	TplResponderComing: {
		ZH: "【守望】{name}已接受您的求助，距您约{distance}，正在赶来。[{ref}]",
		EN: "[Shouwang] {name} accepted your call and is on the way, about {distance} away. [{ref}]",
	},
	TplResponderArrived: {
		ZH: "【守望】{name}已到达现场。[{ref}]",
		EN: "[Shouwang] {name} is on scene. [{ref}]",
	},
	TplSafeCancelled: {
		ZH: "【守望】已取消您的求助，并已通知志愿者无需前往。[{ref}]",
		EN: "[Shouwang] Your call is cancelled and the responders have been told. [{ref}]",
	},
	TplSafeNoted: {
		ZH: "【守望】已记录您安全。其他居民的求助仍在处理中。[{ref}]",
		EN: "[Shouwang] Noted that you are safe. Other residents' calls about this are still being handled. [{ref}]",
	},
	TplDutyAssigned: {
		ZH: "【守望】{plan}：{title}。地点：{address}。{instructions}请在{due}分钟内完成。回复 1 确认，完成后回复“完成”，或点击 {link}。[{ref}]",
		EN: "[Shouwang] {plan}: {title}. Where: {address}. {instructions} Due within {due} min. Reply 1 to confirm and DONE when done, or tap {link}. [{ref}]",
	},
	TplDutyResident: {
		ZH: "【守望】{plan}：{title}——{resident}，{resident_address}，{needs}，联系人：{contact}。请在{due}分钟内完成。回复 1 确认，完成后回复“完成”，或点击 {link}。[{ref}]",
		EN: "[Shouwang] {plan}: {title} — {resident}, {resident_address}, needs: {needs}, contact: {contact}. Due within {due} min. Reply 1 to confirm and DONE when done, or tap {link}. [{ref}]",
	},
	TplDutyAckConfirm: {
		ZH: "【守望】已确认：{title}。完成后请回复“完成”。[{ref}]",
		EN: "[Shouwang] Confirmed: {title}. Reply DONE when it is done. [{ref}]",
	},
	TplDutyDone: {
		ZH: "【守望】已记录完成：{title}，谢谢。[{ref}]",
		EN: "[Shouwang] Recorded as done: {title}. Thank you. [{ref}]",
	},
	TplDutyOverdue: {
		ZH: "【守望】逾期：{assignee}未在{due}分钟内完成“{title}”（{address}）。请应急中心跟进。[{ref}]",
		EN: "[Shouwang] Overdue: {assignee} has not done \"{title}\" ({address}) within {due} min. Emergency center, please follow up. [{ref}]",
	},
	TplDutyUnassigned: {
		ZH: "【守望】预案步骤“{title}”无人承接：本社区未登记{assignee}。请应急中心安排。[{ref}]",
		EN: "[Shouwang] Nobody can take the plan step \"{title}\": no {assignee} is registered. Emergency center, please arrange it. [{ref}]",
	},
	TplVoiceOffer: {
		ZH: "这里是守望社区应急。{type}求助，地址：{address}，距您约{distance}。接受请按1，拒绝请按2。",
		EN: "This is Shouwang community emergency. {type} at {address}, about {distance} from you. Press 1 to accept, 2 to decline.",
	},
	TplVoiceNoInput: {
		ZH: "没有收到按键。请查看短信，回复1接受。再见。",
		EN: "No key was pressed. Please check your text messages and reply 1 to accept. Goodbye.",
	},
	TplVoiceAccepted: {
		ZH: "已确认由您前往，请注意安全。再见。",
		EN: "Confirmed, you are going. Stay safe. Goodbye.",
	},
	TplVoiceDeclined: {
		ZH: "已记录您无法前往，谢谢。再见。",
		EN: "Noted that you cannot go. Thank you. Goodbye.",
	},
	TplDrillStarted: {
		ZH: "【守望】{community}{type}演练开始，{limit}分钟后结束。{notice} 报告：{link}",
		EN: "[Shouwang] {community} {type} drill started; it ends in {limit} min. {notice} Report: {link}",
	},
	TplDrillReport: {
		ZH: "【守望】{type}演练结束：首位接受 {first}，接受率 {rate}，职责按时 {ontime}/{duties}，{silent} 人未回复。报告：{link}",
		EN: "[Shouwang] {type} drill over: first accept {first}, accept rate {rate}, duties on time {ontime}/{duties}, {silent} never answered. Report: {link}",
	},
	TplReadinessGaps: {
		ZH: "【守望】{community}本周应急覆盖：{gaps} 处缺口。最紧要：{top}。详情：{link}",
		EN: "[Shouwang] {community} coverage this week: {gaps} gaps. Most urgent: {top}. Details: {link}",
	},
	TplReadinessOK: {
		ZH: "【守望】{community}本周应急覆盖：无缺口，每个网格各时段 500 米内都有人。详情：{link}",
		EN: "[Shouwang] {community} coverage this week: no gaps; every grid has someone within 500 m at all times. Details: {link}",
	},
	TplVoiceClosed: {
		ZH: "该求助已无需您前往，谢谢。再见。",
		EN: "You are no longer needed for this call. Thank you. Goodbye.",
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
	TplManualAssign: {
		ZH: "【守望】应急中心已安排您前往{type}现场：{address}。请注意安全；到达后点击 {link} 或回复 3。[{ref}]",
		EN: "[Shouwang] The emergency center has sent you to the {type} at {address}. Stay safe; when you arrive, tap {link} or reply 3. [{ref}]",
	},
	TplFalseAlarm: {
		ZH: "【守望】{type}求助（{address}）经核实为误报，已取消，您无需前往，谢谢。[{ref}]",
		EN: "[Shouwang] The {type} call at {address} was a false alarm and is cancelled; you can stand down. Thank you. [{ref}]",
	},
	TplDrillMarked: {
		ZH: "【守望】{type}求助（{address}）已结束，您无需前往，谢谢参与。[{ref}]",
		EN: "[Shouwang] The {type} call at {address} is over; you can stand down. Thank you for taking part. [{ref}]",
	},
	TplBudgetSeason: {
		ZH: "【守望】{community}{month}编制{year}年预算，请列入应急队伍培训经费。{thisyear}年培训支出：{summary}。",
		EN: "[Shouwang] {community} drafts its {year} budget in {month}: please include training money for the response teams. Training spend in {thisyear}: {summary}.",
	},
	TplBudget80: {
		ZH: "【守望】{team}{year}年培训经费已用{percent}%（{spent}/{budget}元），剩余{remaining}元。",
		EN: "[Shouwang] {team} has used {percent}% of its {year} training budget (CNY {spent} of {budget}); CNY {remaining} left.",
	},
	TplBudget100: {
		ZH: "【守望】{team}{year}年培训经费已用完：支出{spent}元，预算{budget}元。如需继续培训请追加预算。",
		EN: "[Shouwang] {team} has used up its {year} training budget: CNY {spent} spent of {budget}. Add to the budget to keep training.",
	},
	TplTrainingIdle: {
		ZH: "【守望】{team}已{months}个月没有培训记录（上次：{last}）。请安排急救、消防等培训并登记。",
		EN: "[Shouwang] {team} has had no training for {months} months (last: {last}). Please arrange first aid or fire training and record it.",
	},
	TplCertExpiring: {
		ZH: "【守望】{name}，您的{cert}将于{date}到期（还有{days}天）。到期后将不再向您派发{skill}求助，请及时复训换证。",
		EN: "[Shouwang] {name}, your {cert} expires on {date} (in {days} days). After that you get no {skill} calls: please renew it.",
	},
	TplCertExpiringLead: {
		ZH: "【守望】{team}队员{name}的{cert}将于{date}到期（还有{days}天），到期后不再派发{skill}求助。请安排复训。",
		EN: "[Shouwang] {team}: {name}'s {cert} expires on {date} (in {days} days); after that no {skill} calls. Please arrange renewal.",
	},
	TplLoginLink: {
		ZH: "【守望】登录链接：{link} （{minutes}分钟内有效，只能用一次）。如不是您本人操作，请忽略本短信。",
		EN: "[Shouwang] Sign-in link: {link} (works once, for {minutes} min). If you did not ask for it, ignore this text.",
	},
}

// DrillPrefix starts every text sent during a drill.
const DrillPrefix = "【演练】"

// TemplateNames lists the templates in a stable order.
func TemplateNames() []string {
	names := make([]string, 0, len(Templates))
	for n := range Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Params lists the {parameters} a template uses, in order of appearance.
func (t Template) Params() []string {
	var out []string
	seen := map[string]bool{}
	for _, text := range []string{t.ZH, t.EN} {
		for {
			i := strings.IndexByte(text, '{')
			if i < 0 {
				break
			}
			j := strings.IndexByte(text[i:], '}')
			if j < 0 {
				break
			}
			name := text[i+1 : i+j]
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
			text = text[i+j+1:]
		}
	}
	return out
}

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
