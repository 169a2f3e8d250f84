package api

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"
)

// RateLimits keep one caller from flooding the API. A request that carries
// a credential the service has already seen work (a bearer token or a
// session cookie) is counted against that credential; every other request
// (no credential, an unknown or stale one) is counted against the client's
// address. Residents behind one carrier-grade NAT therefore do not share a
// budget once signed in, while guessing tokens costs the guesser's address.
// Counting is in memory, per replica.
type RateLimits struct {
	// IP is requests per second from one address without a known
	// credential, IPBurst how many may come at once; 0 turns it off.
	IP      float64
	IPBurst int
	// Token is requests per second for one token or session, TokenBurst
	// how many at once; 0 turns it off.
	Token      float64
	TokenBurst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client. Empty: the peer address is the client and the header,
	// which anyone can send, is ignored.
	TrustedProxies []netip.Prefix
}

// rateLimitKeys bounds each table of buckets; when it is full the buckets
// that have refilled (their callers went quiet) are dropped.
const rateLimitKeys = 100_000

// unlimitedPaths answer without counting: probes and scrapes poll them,
// and Twilio, which may burst from a few addresses, proves itself by
// signature on its webhooks (a 429 there would lose a responder's reply).
var unlimitedPaths = map[string]bool{
	"/healthz": true, "/readyz": true, "/metrics": true,
	"/v1/webhooks/twilio/sms": true, "/v1/webhooks/twilio/status": true, "/v1/webhooks/twilio/voice": true,
}

type limiter struct {
	limits RateLimits
	now    func() time.Time
	ips    *buckets // nil: addresses are not limited
	tokens *buckets // always kept: it says which credentials are known
}

func newLimiter(l RateLimits, now func() time.Time) *limiter {
	lim := &limiter{limits: l, now: now}
	if l.IP > 0 {
		lim.ips = newBuckets(rate.Limit(l.IP), max(l.IPBurst, 1))
	}
	tokenRate, tokenBurst := rate.Inf, 1
	if l.Token > 0 {
		tokenRate, tokenBurst = rate.Limit(l.Token), max(l.TokenBurst, 1)
	}
	lim.tokens = newBuckets(tokenRate, tokenBurst)
	return lim
}

// on says whether any limit is set.
func (l RateLimits) on() bool { return l.IP > 0 || l.Token > 0 }

// middleware refuses a request over its limit with 429 and Retry-After.
func (l *limiter) middleware(c *fiber.Ctx) error {
	if unlimitedPaths[c.Path()] {
		return c.Next()
	}
	now := l.now()
	key := credentialKey(c)
	if key != "" {
		if wait, known := l.tokens.take(key, now, false); known {
			if wait > 0 {
				return tooMany(c, wait)
			}
			return c.Next()
		}
	}
	if l.ips != nil {
		if wait, _ := l.ips.take(clientIP(c, l.limits.TrustedProxies), now, true); wait > 0 {
			return tooMany(c, wait)
		}
	}
	err := c.Next()
	// The credential worked: from now on it has a budget of its own, and
	// this request is the first thing spent from it.
	if _, ok := c.Locals(principalKey).(Principal); ok && key != "" {
		l.tokens.take(key, now, true)
	}
	return err
}

// credentialKey names the request's credential by a hash, so the secret
// itself is never kept; "" when there is none.
func credentialKey(c *fiber.Ctx) string {
	secret := c.Get(fiber.HeaderAuthorization)
	if secret == "" {
		secret = c.Cookies(sessionCookie)
	}
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:16])
}

// clientIP is the caller's address as the per-address limit, the sign-in
// throttle and the logs see it (see clientIP).
func (s *server) clientIP(c *fiber.Ctx) string { return clientIP(c, s.Limits.TrustedProxies) }

// clientIP is the peer address, or behind trusted proxies the last address
// in X-Forwarded-For that is not one of them: each proxy appends the
// address it got the request from, so entries left of that are whatever
// the client wrote.
func clientIP(c *fiber.Ctx, proxies []netip.Prefix) string {
	peer := c.Context().RemoteIP().String()
	if len(proxies) == 0 || !trusted(proxies, peer) {
		return peer
	}
	hops := strings.Split(c.Get(fiber.HeaderXForwardedFor), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		addr, err := netip.ParseAddr(hop)
		if err != nil {
			break // a malformed entry: trust nothing left of it
		}
		if !trusted(proxies, hop) {
			return addr.Unmap().String()
		}
	}
	return peer
}

func trusted(proxies []netip.Prefix, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// tooMany is the 429 answer; Retry-After is whole seconds, at least 1.
func tooMany(c *fiber.Ctx, wait time.Duration) error {
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	return newError(fiber.StatusTooManyRequests, "rate_limited",
		"too many requests; retry after "+strconv.Itoa(secs)+" s (an alarm: retry with the same key)")
}

// buckets are token buckets by key, bounded in number.
type buckets struct {
	every rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newBuckets(every rate.Limit, burst int) *buckets {
	return &buckets{every: every, burst: burst, m: map[string]*rate.Limiter{}}
}

// take spends one request from key's bucket. It returns how long to wait
// when the bucket is empty (nothing is spent then), and whether key had a
// bucket; create makes one for a new key.
func (b *buckets) take(key string, now time.Time, create bool) (wait time.Duration, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, known := b.m[key]
	if !known {
		if !create {
			return 0, false
		}
		if len(b.m) >= rateLimitKeys {
			b.evict(now)
		}
		l = rate.NewLimiter(b.every, b.burst)
		b.m[key] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, known
	}
	return 0, known
}

// evict drops the buckets that are full again: their callers have been
// quiet long enough that a fresh bucket is the same. If that frees too
// little (a flood of new keys), it drops any half, so memory stays bounded;
// a caller dropped that way only gets a full bucket back.
func (b *buckets) evict(now time.Time) {
	for k, l := range b.m {
		if l.TokensAt(now) >= float64(b.burst) {
			delete(b.m, k)
		}
	}
	for k := range b.m {
		if len(b.m) < rateLimitKeys/2 {
			break
		}
		delete(b.m, k)
	}
}
