package sms

import (
	"strings"
	"testing"
)

// FuzzTextWidthAndCase holds the two text parsers (replies to offers and
// duties, alarm keywords) to what a hurried thumb may change without
// changing what it means: a Chinese keyboard's full-width digits and
// letters, the case of Latin letters, spaces and punctuation around the
// word. The answer must also be the same every time, and never a panic.
func FuzzTextWidthAndCase(f *testing.F) {
	for _, s := range []string{
		"1", "2", "3", "y", "Yes", "OK", "接受", "拒绝", "完成", "已完成。", "我安全", "I'm safe", "done", "arrived",
		"火", "着火了！", "救命救命", "HELP", "sos", "S.O.S", "Fire", "gas", "1 OR 1=1", "'; DROP TABLE responders;--",
		"１", "ｙｅｓ", "ＨＥＬＰ", "\u3000１\u3000", "\xff1", "1\x00", strings.Repeat("1", 33), strings.Repeat("救命", 16),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		reply, alarm := ParseReply(body), ParseAlarm(body)
		if ParseReply(body) != reply || ParseAlarm(body) != alarm {
			t.Fatalf("%q read two ways", body)
		}
		for _, variant := range []struct{ name, body string }{
			{"full-width", fullWidth(body)},
			{"upper case", asciiCase(body, true)},
			{"lower case", asciiCase(body, false)},
			{"padded", "\u3000 " + body + " ！。"},
		} {
			if got := ParseReply(variant.body); got != reply {
				t.Errorf("ParseReply(%q) = %v but its %s form %q reads %v", body, reply, variant.name, variant.body, got)
			}
			if got := ParseAlarm(variant.body); got != alarm {
				t.Errorf("ParseAlarm(%q) = %q but its %s form %q reads %q", body, alarm, variant.name, variant.body, got)
			}
		}
		// Only "1" both answers an offer and raises an alarm; the dispatcher
		// lets an open offer win (responders/smsalarm.go).
		if reply != ReplyUnknown && alarm != "" && (reply != ReplyAccept || alarm != "other") {
			t.Fatalf("%q is both the reply %v and the alarm %q", body, reply, alarm)
		}
	})
}

// fullWidth writes ASCII digits and letters as a Chinese keyboard's
// full-width forms (１, Ａ, ａ).
func fullWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return '０' + (r - '0')
		case r >= 'A' && r <= 'Z':
			return 'Ａ' + (r - 'A')
		case r >= 'a' && r <= 'z':
			return 'ａ' + (r - 'a')
		}
		return r
	}, s)
}

// asciiCase changes the case of Latin letters only.
func asciiCase(s string, upper bool) string {
	return strings.Map(func(r rune) rune {
		switch {
		case upper && r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case !upper && r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, s)
}
