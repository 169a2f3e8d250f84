package sms

import (
	"strings"
	"testing"

	"github.com/shouwang/shouwang/events"
)

func TestParseAlarm(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"火", "fire"}, {"着火", "fire"}, {"着火了！", "fire"}, {"失火", "fire"}, {"火灾", "fire"}, {" FIRE ", "fire"},
		{"ｆｉｒｅ", "fire"}, {"火火火", "fire"},
		{"救命", "other"}, {"救命啊！！", "other"}, {"救命救命救命", "other"}, {"救命啊救命啊", "other"},
		{"HELP", "other"}, {"ＨＥＬＰ", "other"}, {"help!", "other"}, {"S.O.S", "other"}, {"求助", "other"},
		{"1", "other"}, {"１", "other"}, {" 1。", "other"},
		{"急救", "medical"}, {"救护车", "medical"}, {"Ambulance", "medical"},
		{"煤气", "gas_leak"}, {"燃气泄漏", "gas_leak"}, {"GAS", "gas_leak"},
		{"水", "flood"}, {"漏水了", "flood"}, {"水浸", "flood"}, {"flood", "flood"},
		{"可疑", "suspicious_object"}, {"bomb", "suspicious_object"},
		{"打架", "violence"}, {"走失", "missing_person"}, {"困电梯", "elevator_entrapment"}, {"电梯", "elevator_entrapment"},
		// Not alarms: replies, sentences, nothing at all.
		{"", ""}, {"！！", ""}, {"了", ""}, {"2", ""}, {"12", ""}, {"我安全", ""}, {"完成", ""}, {"接受", ""},
		{"火车几点到", ""}, {"5栋3单元着火了快来人", ""}, {"helpme", ""}, {"water", ""},
		{"救命救命救命救命救命救命救命救命救命救命救命救命", ""}, // a wall of text is not read
	} {
		if got := ParseAlarm(tc.body); got != tc.want {
			t.Errorf("ParseAlarm(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// Every keyword names a type residents can press, and only "1" also means
// something as a reply (HandleReply lets an open offer or duty win).
func TestAlarmWordsAreTypesAndNotReplies(t *testing.T) {
	tax := events.DefaultTaxonomy()
	for w, typ := range alarmWords {
		if _, ok := tax.Type(typ); !ok {
			t.Errorf("keyword %q maps to %q, which is not in the taxonomy", w, typ)
		}
		if got := ParseAlarm(w); got != typ {
			t.Errorf("keyword %q parses as %q, want %q", w, got, typ)
		}
		if r := ParseReply(w); r != ReplyUnknown && w != "1" {
			t.Errorf("keyword %q is also the reply %v", w, r)
		}
	}
}

// The keywords the help text names are keywords.
func TestAlarmHelpNamesKeywords(t *testing.T) {
	tpl := Templates[TplSMSAlarmHelp]
	for _, w := range []string{"火", "救命", "急救", "燃气", "漏水", "可疑", "FIRE", "HELP", "MEDICAL", "GAS", "FLOOD", "BOMB"} {
		if !strings.Contains(tpl.ZH+tpl.EN, w) {
			t.Errorf("the help text does not name %q", w)
		}
		if ParseAlarm(w) == "" {
			t.Errorf("the help text names %q, which raises no alarm", w)
		}
	}
}
