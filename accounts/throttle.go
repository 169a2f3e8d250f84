package accounts

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttle counts failed sign-ins per key (a username and an address) and
// says when a key has failed too often. It is in memory, per replica: with
// N replicas behind a balancer an attacker gets at most N times the
// allowance, still far too few tries to guess a password.
type Throttle struct {
	burst int
	every time.Duration

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

// throttleKeys is how many keys are kept before the ones that have
// recovered fully are dropped.
const throttleKeys = 10_000

// NewThrottle allows failures tries per period for each key: that many at
// once, then one each period/failures.
func NewThrottle(failures int, period time.Duration) *Throttle {
	return &Throttle{burst: failures, every: period / time.Duration(failures), keys: map[string]*rate.Limiter{}}
}

// Wait says how long key must wait before it may try again; zero means now.
func (t *Throttle) Wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.keys[key]
	if !ok {
		return 0
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(t.every)))
}

// Fail counts a failed try for key.
func (t *Throttle) Fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.keys[key]
	if !ok {
		if len(t.keys) >= throttleKeys {
			t.forgetRecovered(now)
		}
		l = rate.NewLimiter(rate.Every(t.every), t.burst)
		t.keys[key] = l
	}
	l.AllowN(now, 1)
}

// Forget clears key's failures (after a success).
func (t *Throttle) Forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, key)
}

// forgetRecovered drops the keys whose allowance is whole again: they are
// as if they had never failed.
func (t *Throttle) forgetRecovered(now time.Time) {
	for k, l := range t.keys {
		if l.TokensAt(now) >= float64(t.burst) {
			delete(t.keys, k)
		}
	}
}
