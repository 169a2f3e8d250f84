package sms

import "strings"

// maskIn masks a phone number wherever it appears in s, with or without its
// leading plus: provider errors quote the number they refused, and logs
// must not carry it.
func maskIn(s, phone string) string {
	if len(phone) < 2 {
		return s
	}
	s = strings.ReplaceAll(s, phone, Mask(phone))
	if bare := strings.TrimPrefix(phone, "+"); bare != phone {
		s = strings.ReplaceAll(s, bare, Mask(bare))
	}
	return s
}
