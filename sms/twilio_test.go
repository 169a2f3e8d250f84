package sms

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shouwang/shouwang/sms/twiliofake"
	"github.com/twilio/twilio-go/client"
)

const testFrom = "+15005550006"

func newTestTwilio(t *testing.T) (*Twilio, *twiliofake.Server) {
	t.Helper()
	fake := twiliofake.New(t)
	return NewTwilio(twiliofake.AccountSID, twiliofake.AuthToken, testFrom, WithHTTPClient(fake.Client())), fake
}

func TestTwilioSendReachesTwilioWithEverythingTheResponderNeeds(t *testing.T) {
	p, fake := newTestTwilio(t)
	out := Outgoing{
		To:             "+8613800138000",
		Body:           "守望: 火警 3号楼 2单元, 距您 300 米. 回复 1 接受, 2 拒绝",
		StatusCallback: "https://shouwang.example.org/v1/sms/status",
	}

	sid, err := p.Send(context.Background(), out)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !strings.HasPrefix(sid, "SM") || len(sid) != 34 {
		t.Errorf("sid = %q, want SM + 32 hex", sid)
	}

	got := fake.MessagesTo(out.To)
	if len(got) != 1 {
		t.Fatalf("fake recorded %d messages to %s, want 1", len(got), out.To)
	}
	m := got[0]
	if m.SID != sid || m.From != testFrom || m.Body != out.Body || m.StatusCallback != out.StatusCallback {
		t.Errorf("recorded %+v, want sid %s from %s body %q callback %s", m, sid, testFrom, out.Body, out.StatusCallback)
	}
}

func TestTwilioSendWithoutStatusCallbackSendsNone(t *testing.T) {
	p, fake := newTestTwilio(t)
	if _, err := p.Send(context.Background(), Outgoing{To: "+8613800138001", Body: "drill"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if cb := fake.Messages()[0].StatusCallback; cb != "" {
		t.Errorf("StatusCallback = %q, want none", cb)
	}
}

func TestTwilioSendErrorsSayWhetherToRetry(t *testing.T) {
	tests := []struct {
		name      string
		to        string
		fault     func(*twiliofake.Server)
		permanent bool
		code      int // Twilio code on a permanent error
	}{
		{name: "server error", fault: func(f *twiliofake.Server) { f.FailNext(1, 500, 20500) }},
		{name: "too many requests", fault: func(f *twiliofake.Server) { f.FailNext(1, 429, 20429) }},
		{name: "outage", fault: func(f *twiliofake.Server) { f.SetDown(http.StatusServiceUnavailable) }},
		{name: "invalid number", fault: func(f *twiliofake.Server) { f.FailNext(1, 400, 21211) }, permanent: true, code: 21211},
		{name: "malformed number checked by twilio", to: "13800138000", permanent: true, code: 21211},
		{name: "unsubscribed recipient", fault: func(f *twiliofake.Server) { f.FailNext(1, 400, 21610) }, permanent: true, code: 21610},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, fake := newTestTwilio(t)
			if tt.fault != nil {
				tt.fault(fake)
			}
			to := tt.to
			if to == "" {
				to = "+8613800138000"
			}

			_, err := p.Send(context.Background(), Outgoing{To: to, Body: "gas leak, building 5"})
			if err == nil {
				t.Fatal("Send succeeded, want an error")
			}
			if got := IsPermanent(err); got != tt.permanent {
				t.Fatalf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			if len(fake.MessagesTo(to)) != 0 {
				t.Errorf("a failed send was recorded as sent")
			}
			if tt.permanent {
				var pe *PermanentError
				if !errors.As(err, &pe) || pe.Code != tt.code {
					t.Errorf("error %v: want PermanentError code %d", err, tt.code)
				}
				var re *client.TwilioRestError
				if !errors.As(err, &re) {
					t.Errorf("PermanentError does not unwrap to Twilio's error: %v", err)
				}
			}
		})
	}
}

func TestTwilioRateLimitIsRetryable(t *testing.T) {
	p, fake := newTestTwilio(t)
	fake.SetRateLimit(1)
	if _, err := p.Send(context.Background(), Outgoing{To: "+8613800138000", Body: "first"}); err != nil {
		t.Fatalf("first send: %v", err)
	}
	_, err := p.Send(context.Background(), Outgoing{To: "+8613800138001", Body: "second"})
	if err == nil || IsPermanent(err) {
		t.Fatalf("second send in the same second: err = %v, want a retryable error", err)
	}
}

func TestTwilioRetryAfterOutageDelivers(t *testing.T) {
	p, fake := newTestTwilio(t)
	out := Outgoing{To: "+8613800138000", Body: "flood warning"}
	fake.SetDown(http.StatusBadGateway)
	if _, err := p.Send(context.Background(), out); err == nil || IsPermanent(err) {
		t.Fatalf("during outage: err = %v, want a retryable error", err)
	}
	fake.SetUp()
	if _, err := p.Send(context.Background(), out); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if n := len(fake.MessagesTo(out.To)); n != 1 {
		t.Errorf("responder got %d texts, want 1", n)
	}
}

// Wrong credentials fail every text alike; they must not be dropped as
// permanent failures while someone fixes the configuration.
func TestTwilioWrongCredentialsAreRetryable(t *testing.T) {
	fake := twiliofake.New(t)
	p := NewTwilio(twiliofake.AccountSID, "ffffffffffffffffffffffffffffffff", testFrom, WithHTTPClient(fake.Client()))
	_, err := p.Send(context.Background(), Outgoing{To: "+8613800138000", Body: "fire"})
	if err == nil || IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
}

func TestTwilioSendGivesUpWhenContextEnds(t *testing.T) {
	p, fake := newTestTwilio(t)
	fake.SetDelay(5 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Send(ctx, Outgoing{To: "+8613800138000", Body: "medical, building 2"})
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Send took %v after its context expired", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Fatalf("err = %v, want retryable context.DeadlineExceeded", err)
	}
	if n := len(fake.Messages()); n != 0 {
		t.Errorf("fake recorded %d messages, want 0", n)
	}
}

func TestTwilioSendWithCancelledContextSendsNothing(t *testing.T) {
	p, fake := newTestTwilio(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Send(ctx, Outgoing{To: "+8613800138000", Body: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := len(fake.Messages()); n != 0 {
		t.Errorf("fake recorded %d messages, want 0", n)
	}
}

func TestValidTwilioSignature(t *testing.T) {
	const hook = "https://shouwang.example.org/v1/sms/inbound"
	form := url.Values{
		"MessageSid": {"SM0123456789abcdef0123456789abcdef"},
		"From":       {"+8613800138000"},
		"To":         {testFrom},
		"Body":       {"1"},
	}
	params := map[string]string{}
	for k, v := range form {
		params[k] = v[0]
	}
	sig := twiliofake.Sign(twiliofake.AuthToken, hook, form)

	if !ValidTwilioSignature(twiliofake.AuthToken, hook, params, sig) {
		t.Error("genuine Twilio webhook rejected")
	}

	tampered := map[string]string{}
	for k, v := range params {
		tampered[k] = v
	}
	tampered["Body"] = "2" // an attacker turning "accept" into "decline"
	if ValidTwilioSignature(twiliofake.AuthToken, hook, tampered, sig) {
		t.Error("webhook with a changed Body accepted")
	}
	if ValidTwilioSignature("ffffffffffffffffffffffffffffffff", hook, params, sig) {
		t.Error("signature checked with the wrong token accepted")
	}
	if ValidTwilioSignature(twiliofake.AuthToken, "https://evil.example.org/v1/sms/inbound", params, sig) {
		t.Error("signature for another URL accepted")
	}
	if ValidTwilioSignature(twiliofake.AuthToken, hook, params, "") {
		t.Error("unsigned webhook accepted")
	}
}
