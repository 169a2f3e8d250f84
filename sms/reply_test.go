package sms

import (
	"testing"

	"github.com/shouwang/shouwang/events"
)

func TestParseReply(t *testing.T) {
	for body, want := range map[string]Reply{
		"1": ReplyAccept, " 1 ": ReplyAccept, "１": ReplyAccept, "Y": ReplyAccept, "yes!": ReplyAccept,
		"接": ReplyAccept, "接受。": ReplyAccept, "2": ReplyDecline, "N": ReplyDecline, "拒": ReplyDecline,
		"拒绝": ReplyDecline, "no.": ReplyDecline, "12": ReplyUnknown, "": ReplyUnknown, "maybe": ReplyUnknown,
		"1 2": ReplyUnknown, "我马上到": ReplyUnknown,
		"我安全": ReplySafe, "我安全！": ReplySafe, "SAFE": ReplySafe, "I'm safe": ReplySafe, "３": ReplyArrived, "到达": ReplyArrived,
		"完成": ReplyDone, "DONE": ReplyDone, "已完成。": ReplyDone,
		"1\ufe0f\u20e3": ReplyAccept, "2\ufe0f\u20e3": ReplyDecline, "\u200b1\u200b": ReplyAccept, "\ufeff\u200f2": ReplyDecline,
		"1\u200d2": ReplyUnknown,
	} {
		if got := ParseReply(body); got != want {
			t.Errorf("ParseReply(%q) = %v, want %v", body, got, want)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"1", "2", "接", "拒绝", "Ｙ", "yes", "\x00", "１２３", "火", "救命啊", "ＨＥＬＰ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := ParseReply(body)
		if r != ReplyUnknown && r != ReplyAccept && r != ReplyDecline && r != ReplyArrived && r != ReplySafe && r != ReplyDone {
			t.Fatalf("ParseReply(%q) = %d", body, r)
		}
		// A reply that says both or neither is never taken as an answer.
		if r == ReplyAccept && ParseReply(body+"2") == ReplyAccept && body != "" {
			t.Fatalf("%q and %q both accept", body, body+"2")
		}
		// An alarm is a type residents can press; punctuation around it
		// changes nothing.
		typ := ParseAlarm(body)
		if _, ok := events.DefaultTaxonomy().Type(typ); typ != "" && !ok {
			t.Fatalf("ParseAlarm(%q) = %q, not a type", body, typ)
		}
		if typ != "" && ParseAlarm("！"+body+" 。") != typ {
			t.Fatalf("ParseAlarm(%q) = %q but not with punctuation around it", body, typ)
		}
	})
}

func TestRenderAndMask(t *testing.T) {
	got := Render(TplOffer, "zh-CN", map[string]string{"type": "急救", "address": "3栋2单元501", "distance": "120米", "ref": "AB12",
		"link": "https://s.example/o/abc"}, true)
	want := "【演练】【守望】急救求助：3栋2单元501，距您约120米。点击 https://s.example/o/abc 接受或拒绝，或回复 1 接受，2 拒绝。[AB12]"
	if got != want {
		t.Fatalf("Render = %q\nwant     %q", got, want)
	}
	if got := Render(TplNoOpenOffer, "en", nil, false); got != Templates[TplNoOpenOffer].EN {
		t.Fatalf("english = %q", got)
	}
	if got := Mask("+8613812345678"); got != "+86138****5678" {
		t.Fatalf("Mask = %q", got)
	}
}
