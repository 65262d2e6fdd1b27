package cache

import (
	"sync/atomic"
	"time"

	"github.com/optralis/optralis/internal/clock"
)

// Pause is how long a Breaker keeps callers off Redis after a failure.
const Pause = 5 * time.Second

// Breaker stops calls to Redis for a while after one fails: an unreachable server then
// costs one slow call per pause, not one per request, and callers use their fallback
// (the database, an in-process limiter) meanwhile. It is safe for concurrent use.
type Breaker struct {
	clock clock.Clock
	pause time.Duration
	until atomic.Int64 // Unix nanoseconds before which Redis is not tried
}

// NewBreaker returns a closed breaker (Redis is tried) that opens for pause after each
// failure; pause 0 means Pause.
func NewBreaker(clk clock.Clock, pause time.Duration) *Breaker {
	if pause == 0 {
		pause = Pause
	}
	return &Breaker{clock: clk, pause: pause}
}

// Ready tells whether Redis may be tried now.
func (b *Breaker) Ready() bool { return b.clock.Now().UnixNano() >= b.until.Load() }

// Fail records a Redis failure: Redis is not tried again until the pause has passed. It
// returns the pause, for the caller's log line.
func (b *Breaker) Fail() time.Duration {
	b.until.Store(b.clock.Now().Add(b.pause).UnixNano())
	return b.pause
}
