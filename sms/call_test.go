package sms

import (
	"context"
	"errors"
	"testing"

	"github.com/shouwang/shouwang/sms/twiliofake"
)

func TestTwilioCall(t *testing.T) {
	fake := twiliofake.New(t)
	p := NewTwilio(twiliofake.AccountSID, twiliofake.AuthToken, "+8610690000000", WithHTTPClient(fake.Client()))
	twiml := `<?xml version="1.0" encoding="UTF-8"?><Response><Gather numDigits="1"><Say language="zh-CN">火灾求助：3号楼 &amp; 5号楼。接受请按1</Say></Gather></Response>`
	sid, err := p.Call(context.Background(), Call{To: "+8613800138000", TwiML: twiml, StatusCallback: "https://s.example/cb"})
	if err != nil {
		t.Fatal(err)
	}
	calls := fake.Calls()
	if len(calls) != 1 || calls[0].SID != sid || calls[0].Twiml != twiml || calls[0].To != "+8613800138000" ||
		calls[0].From != "+8610690000000" || calls[0].StatusCallback != "https://s.example/cb" {
		t.Fatalf("recorded %+v (sid %s)", calls, sid)
	}

	fake.FailNext(1, 503, 20503)
	if _, err := p.Call(context.Background(), Call{To: "+8613800138000", TwiML: twiml}); err == nil || IsPermanent(err) {
		t.Fatalf("503: %v, want retryable", err)
	}
	_, err = p.Call(context.Background(), Call{To: "12345", TwiML: twiml})
	var perm *PermanentError
	if !errors.As(err, &perm) || perm.Code != 21217 {
		t.Fatalf("invalid number: %v, want permanent 21217", err)
	}
}
