package sms

import (
	"strings"
	"unicode"
)

// Reply is what a responder meant by a text.
type Reply int

// Replies we understand.
const (
	ReplyUnknown Reply = iota
	ReplyAccept
	ReplyDecline
	ReplyArrived // a responder is on scene
	ReplySafe    // a resident who pressed is safe after all
	ReplyDone    // a duty is done
)

func (r Reply) String() string {
	switch r {
	case ReplyAccept:
		return "accept"
	case ReplyDecline:
		return "decline"
	case ReplyArrived:
		return "arrived"
	case ReplySafe:
		return "safe"
	case ReplyDone:
		return "done"
	}
	return "unknown"
}

var replyWords = map[string]Reply{
	"1": ReplyAccept, "y": ReplyAccept, "yes": ReplyAccept, "ok": ReplyAccept,
	"接": ReplyAccept, "接受": ReplyAccept, "是": ReplyAccept, "好": ReplyAccept, "收到": ReplyAccept,
	"2": ReplyDecline, "n": ReplyDecline, "no": ReplyDecline,
	"拒": ReplyDecline, "拒绝": ReplyDecline, "否": ReplyDecline, "不": ReplyDecline, "不去": ReplyDecline,
	"3": ReplyArrived, "到": ReplyArrived, "到达": ReplyArrived, "已到": ReplyArrived, "已到达": ReplyArrived, "arrived": ReplyArrived,
	"完成": ReplyDone, "已完成": ReplyDone, "做完了": ReplyDone, "done": ReplyDone,
	"我安全": ReplySafe, "安全": ReplySafe, "我没事": ReplySafe, "safe": ReplySafe, "imsafe": ReplySafe, "iamsafe": ReplySafe,
}

// ParseReply reads a reply to an offer. It is forgiving about what phones
// and hurried thumbs add (spaces, full-width digits, punctuation, case) and
// strict about the word itself: a reply we are not sure of is unknown.
func ParseReply(body string) Reply {
	s, ok := normalize(body, 32)
	if !ok {
		return ReplyUnknown
	}
	return replyWords[s]
}

// normalize folds what phones and hurried thumbs add to a word: full-width
// digits and letters become ASCII, case is lowered, spaces, punctuation,
// symbols (emoji) and invisible marks go. ok is false when what is left
// is longer than limit bytes: a sentence, not a word.
func normalize(body string, limit int) (word string, ok bool) {
	var b strings.Builder
	for _, r := range body {
		switch {
		case r >= '０' && r <= '９': // full-width digits from Chinese keyboards
			b.WriteRune('0' + (r - '０'))
		case r >= 'Ａ' && r <= 'Ｚ', r >= 'ａ' && r <= 'ｚ':
			b.WriteRune(unicode.ToLower(r - 'Ａ' + 'A'))
		case unicode.IsSpace(r), unicode.IsPunct(r), unicode.IsSymbol(r):
		// Invisible marks phones add: zero-width spaces and joiners,
		// direction marks, emoji variation selectors, and the keycap of
		// "1️⃣" ("1" U+FE0F U+20E3), which a responder may well send.
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Me, r), unicode.Is(unicode.Variation_Selector, r):
		default:
			b.WriteRune(unicode.ToLower(r))
		}
		if b.Len() > limit {
			return "", false
		}
	}
	return b.String(), true
}
