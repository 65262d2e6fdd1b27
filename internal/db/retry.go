package db

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff bounds a retry: at most Attempts calls, the wait before call n+1 drawn uniformly
// from [0, min(Max, Base·2ⁿ)) ("full jitter", so concurrent retriers spread out).
type Backoff struct {
	Attempts  int
	Base, Max time.Duration
}

// RefreshBackoff is the retry of a continuous-aggregate refresh refused because another
// refresh of the same aggregate (TimescaleDB's policy) is running: 8 attempts, waits
// capped at 5 s, about 20 s in all at worst — a policy refresh of one hour of data
// normally finishes well within that.
func RefreshBackoff() Backoff {
	return Backoff{Attempts: 8, Base: 250 * time.Millisecond, Max: 5 * time.Second}
}

// RetryLockNotAvailable calls fn until it returns nil or an error other than SQLSTATE
// 55P03 (LockNotAvailable: a lock timeout, or TimescaleDB's "concurrent refresh" since
// 2.26), b.Attempts calls at most, waiting a jittered backoff between calls. It returns
// fn's last error, or ctx's error when ctx ends while waiting. Every call of
// refresh_continuous_aggregate goes through it (rollup.Refresher.Refresh).
func RetryLockNotAvailable(ctx context.Context, b Backoff, fn func(context.Context) error) error {
	attempts := max(b.Attempts, 1)
	var err error
	for n := range attempts {
		if err = fn(ctx); err == nil || Code(err) != LockNotAvailable || n == attempts-1 {
			return err
		}
		wait := b.Max
		if shift := uint(n); shift < 32 && b.Base<<shift < b.Max && b.Base<<shift > 0 {
			wait = b.Base << shift
		}
		if wait > 0 {
			wait = rand.N(wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return err
}
