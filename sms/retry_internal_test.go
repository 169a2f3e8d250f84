package sms

import (
	"errors"
	"testing"
	"time"

	"github.com/shouwang/shouwang/events"
)

func TestRetryOutcomeOfASharedWakeUp(t *testing.T) {
	wait := func(d time.Duration) error { return events.RetryAfter(d, errors.New("per-recipient limit")) }
	outage := errors.New("provider unavailable")
	if err := retryOutcome([]error{nil, nil}); err != nil {
		t.Errorf("all sent: %v, want nil", err)
	}
	if d, ok := events.RetryDelay(retryOutcome([]error{wait(time.Second), nil, wait(3 * time.Second)})); !ok || d != 3*time.Second {
		t.Errorf("all failed ones wait: delay %v (%v), want the longest, 3s", d, ok)
	}
	for _, errs := range [][]error{
		{wait(time.Second), outage},
		{events.Permanent(errors.New("bad row")), nil, outage},
	} {
		err := retryOutcome(errs)
		if err == nil || errors.Unwrap(err) != nil {
			t.Errorf("%v: outcome %v; want a plain error, so the bus neither waits a fixed time nor gives up on the others", errs, err)
		}
		if _, ok := events.RetryDelay(err); ok {
			t.Errorf("%v: outcome asks for a fixed delay", errs)
		}
	}
}
