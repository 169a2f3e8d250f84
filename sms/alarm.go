package sms

import (
	"strings"
	"unicode/utf8"
)

// alarmWords map what a frightened resident texts to an incident type of
// the taxonomy (events/taxonomy.yaml). 救命, HELP, SOS and 1 say only "come"
// and map to "other" (求助), the generic type whose responders include
// general volunteers, security and medics; words that name an illness or
// injury map to "medical" (急救).
var alarmWords = map[string]string{
	"火": "fire", "着火": "fire", "失火": "fire", "火灾": "fire", "起火": "fire", "火警": "fire", "冒烟": "fire", "fire": "fire",

	"救命": "other", "救救我": "other", "求救": "other", "求助": "other", "help": "other", "sos": "other", "1": "other",

	"急救": "medical", "医疗": "medical", "救护车": "medical", "晕倒": "medical", "昏倒": "medical", "受伤": "medical",
	"medical": "medical", "ambulance": "medical",

	"煤气": "gas_leak", "燃气": "gas_leak", "天然气": "gas_leak", "漏气": "gas_leak", "煤气泄漏": "gas_leak",
	"燃气泄漏": "gas_leak", "gas": "gas_leak",

	"水": "flood", "漏水": "flood", "水浸": "flood", "淹水": "flood", "进水": "flood", "水灾": "flood", "爆管": "flood",
	"flood": "flood",

	"可疑": "suspicious_object", "可疑物品": "suspicious_object", "可疑包裹": "suspicious_object", "炸弹": "suspicious_object",
	"bomb": "suspicious_object", "suspicious": "suspicious_object",

	"打架": "violence", "打人": "violence", "抢劫": "violence", "暴力": "violence", "持刀": "violence",
	"fight": "violence", "robbery": "violence",

	"走失": "missing_person", "失踪": "missing_person", "missing": "missing_person",

	"电梯": "elevator_entrapment", "困电梯": "elevator_entrapment", "电梯困人": "elevator_entrapment",
	"被困电梯": "elevator_entrapment", "elevator": "elevator_entrapment", "lift": "elevator_entrapment",
}

// particles are the sentence-final words a text may end with ("着火了",
// "救命啊") without changing what it asks for.
const particles = "了啦啊呀吧哇"

// ParseAlarm reads a text as an alarm and returns its incident type, or ""
// when the text is not an alarm keyword. Like ParseReply it is forgiving
// about spaces, punctuation, full-width characters, case, a trailing
// particle and a word repeated in panic ("救命救命！"), and strict about the
// word itself: a sentence is not guessed at, since a wrong type sends the
// wrong people.
func ParseAlarm(body string) string {
	s, ok := normalize(body, 64)
	if !ok {
		return ""
	}
	// "救命啊救命啊" and "救命救命啊" both come down to 救命.
	return alarmWords[unrepeat(trimParticles(unrepeat(s)))]
}

func trimParticles(s string) string {
	for {
		r, size := utf8.DecodeLastRuneInString(s)
		if size == 0 || size == len(s) || !strings.ContainsRune(particles, r) {
			return s
		}
		s = s[:len(s)-size]
	}
}

// unrepeat returns the word s repeats ("救命救命救命" → "救命"), or s.
func unrepeat(s string) string {
	rs := []rune(s)
	for p := 1; p <= len(rs)/2; p++ {
		if len(rs)%p != 0 {
			continue
		}
		unit := string(rs[:p])
		if strings.Repeat(unit, len(rs)/p) == s {
			return unit
		}
	}
	return s
}
