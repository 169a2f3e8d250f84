package api

import (
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// A flood of new keys (one a spoofed address each) cannot grow the table
// without bound, and a caller who was refused is still refused after it.
func TestBucketsStayBounded(t *testing.T) {
	b := newBuckets(rate.Limit(1), 2)
	now := time.Unix(1_700_000_000, 0)
	b.take("noisy", now, true)
	b.take("noisy", now, true)
	if wait, _ := b.take("noisy", now, true); wait <= 0 {
		t.Fatalf("third request at once with a burst of 2 was allowed")
	}
	for i := range rateLimitKeys + 10 {
		b.take(strconv.Itoa(i), now, true)
		if len(b.m) > rateLimitKeys {
			t.Fatalf("%d buckets after %d keys, want at most %d", len(b.m), i+1, rateLimitKeys)
		}
	}
	// When the table fills again, the quiet callers' buckets (refilled)
	// are the ones dropped; the busy callers keep theirs.
	later := now.Add(time.Minute)
	for i := 0; ; i++ {
		before := len(b.m)
		b.take("busy-"+strconv.Itoa(i), later, true)
		if len(b.m) < before {
			if len(b.m) != i+1 {
				t.Fatalf("eviction kept %d buckets, want only the %d busy callers'", len(b.m), i+1)
			}
			break
		}
	}
}
