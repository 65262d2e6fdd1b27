// Package ratelimit counts attempts per key across instances through Redis, and still limits
// (per instance) when Redis is unavailable.
package ratelimit

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
)

// Limit allows Burst attempts at once, then one every Period/Burst: a token bucket (GCRA
// in Redis) whose sustained rate is Burst per Period. {5, 15 min} is the spec's auth limit.
type Limit struct {
	Burst  int
	Period time.Duration
}

func (l Limit) interval() time.Duration { return l.Period / time.Duration(l.Burst) }

// Decision is the answer for one attempt.
type Decision struct {
	Allowed    bool
	RetryAfter time.Duration // when refused: how long until the next attempt is allowed
}

// DefaultMaxLocalKeys bounds the in-process fallback's memory.
const DefaultMaxLocalKeys = 10000

// Limiter is safe for concurrent use.
//
// With Redis, every instance shares one GCRA bucket per key (redis_rate, Redis's clock).
// When Redis is absent or fails, the same algorithm runs in process (golang.org/x/time/rate
// token buckets, same burst and refill, the injectable clock): an instance then limits on
// its own, so N instances allow up to N times the limit, but nobody gets unlimited attempts
// because the cache is down. The fallback keeps at most MaxLocalKeys buckets; buckets idle
// long enough to be full again are dropped first, and when that is not enough a new key is
// refused (fail closed) rather than evicting someone's partly used bucket.
type Limiter struct {
	redis        *redis_rate.Limiter // nil: in process only
	prefix       string
	clock        clock.Clock
	logger       *slog.Logger
	maxLocalKeys int
	breaker      *cache.Breaker // after a Redis error, in process only for cache.Pause

	mu    sync.Mutex
	local map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
	full time.Duration // idle time after which the bucket is full again
}

// Option changes a Limiter's defaults.
type Option func(*Limiter)

// WithMaxLocalKeys bounds the in-process fallback to n buckets (default DefaultMaxLocalKeys).
func WithMaxLocalKeys(n int) Option { return func(l *Limiter) { l.maxLocalKeys = n } }

// New returns a limiter. rc may be nil; prefix namespaces its Redis keys.
func New(rc *redis.Client, prefix string, clk clock.Clock, logger *slog.Logger, opts ...Option) *Limiter {
	l := &Limiter{prefix: prefix, clock: clk, logger: logger, maxLocalKeys: DefaultMaxLocalKeys,
		breaker: cache.NewBreaker(clk, cache.Pause), local: map[string]*bucket{}}
	if rc != nil {
		l.redis = redis_rate.NewLimiter(rc)
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Allow counts one attempt for key and tells whether it may proceed.
func (l *Limiter) Allow(ctx context.Context, key string, lim Limit) Decision {
	return l.take(ctx, key, lim, 1)
}

// Refund gives back one attempt counted by Allow for key, never filling the bucket beyond
// its burst: for attempts that failed on the server's side (a database outage), which
// must not use up the caller's limit.
func (l *Limiter) Refund(ctx context.Context, key string, lim Limit) {
	if l.redis != nil && l.breaker.Ready() {
		// A negative cost moves the GCRA's theoretical arrival time back by one interval;
		// a full bucket stays as it is (redis_rate never stores a time before now).
		_, err := l.redis.AllowN(ctx, l.prefix+key, redis_rate.Limit{Rate: lim.Burst, Burst: lim.Burst, Period: lim.Period}, -1)
		if err == nil {
			return
		}
		pause := l.breaker.Fail()
		l.logger.WarnContext(ctx, "ratelimit: Redis unavailable, limiting in process", "error", err.Error(), "retry_in", pause.String())
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.local[key]; ok && b.lim.TokensAt(now) <= float64(lim.Burst-1) {
		b.lim.AllowN(now, -1)
	}
}

// Peek tells whether an attempt for key would be allowed now, without counting one.
func (l *Limiter) Peek(ctx context.Context, key string, lim Limit) Decision {
	return l.take(ctx, key, lim, 0)
}

func (l *Limiter) take(ctx context.Context, key string, lim Limit, n int) Decision {
	if l.redis != nil && l.breaker.Ready() {
		res, err := l.redis.AllowN(ctx, l.prefix+key, redis_rate.Limit{Rate: lim.Burst, Burst: lim.Burst, Period: lim.Period}, n)
		if err == nil {
			return redisDecision(res, lim, n)
		}
		pause := l.breaker.Fail()
		l.logger.WarnContext(ctx, "ratelimit: Redis unavailable, limiting in process", "error", err.Error(), "retry_in", pause.String())
	}
	return l.takeLocal(key, lim, n)
}

func redisDecision(res *redis_rate.Result, lim Limit, n int) Decision {
	if n > 0 {
		if res.Allowed > 0 {
			return Decision{Allowed: true}
		}
		return Decision{RetryAfter: res.RetryAfter}
	}
	// A zero-cost call always "succeeds"; Remaining says how many whole attempts are left.
	if res.Remaining >= 1 {
		return Decision{Allowed: true}
	}
	return Decision{RetryAfter: max(res.ResetAfter-time.Duration(lim.Burst-1)*lim.interval(), time.Second)}
}

func (l *Limiter) takeLocal(key string, lim Limit, n int) Decision {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.local[key]
	if !ok {
		if len(l.local) >= l.maxLocalKeys {
			l.sweep(now)
		}
		if len(l.local) >= l.maxLocalKeys {
			return Decision{RetryAfter: lim.interval()}
		}
		b = &bucket{lim: rate.NewLimiter(rate.Every(lim.interval()), lim.Burst), full: lim.Period}
		l.local[key] = b
	}
	b.last = now
	if n == 0 {
		if tokens := b.lim.TokensAt(now); tokens < 1 {
			return Decision{RetryAfter: missing(1-tokens, lim)}
		}
		return Decision{Allowed: true}
	}
	if b.lim.AllowN(now, n) {
		return Decision{Allowed: true}
	}
	return Decision{RetryAfter: missing(float64(n)-b.lim.TokensAt(now), lim)}
}

// missing is how long the bucket takes to refill the given number of tokens.
func missing(tokens float64, lim Limit) time.Duration {
	d := time.Duration(math.Ceil(tokens * float64(lim.interval())))
	return max(d, time.Second)
}

// sweep drops buckets idle long enough to be full again: forgetting them changes nothing.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.local {
		if now.Sub(b.last) >= b.full {
			delete(l.local, k)
		}
	}
}

// RetryAfterSeconds rounds a wait up to whole seconds for the Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
