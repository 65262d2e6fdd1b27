package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/ratelimit"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var auth = ratelimit.Limit{Burst: 5, Period: 15 * time.Minute}

func exhaust(t *testing.T, l *ratelimit.Limiter, key string) ratelimit.Decision {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if d := l.Allow(ctx, key, auth); !d.Allowed {
			t.Fatalf("attempt %d refused: %+v", i+1, d)
		}
	}
	d := l.Allow(ctx, key, auth)
	if d.Allowed {
		t.Fatal("sixth attempt allowed")
	}
	return d
}

func TestRedisSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	rc, prefix := testenv.Redis(t)
	clk := authtest.NewClock(time.Now())
	a := ratelimit.New(rc, prefix, clk, testenv.Discard())
	b := ratelimit.New(rc, prefix, clk, testenv.Discard())
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if !a.Allow(ctx, "login:192.0.2.1", auth).Allowed {
			t.Fatal("refused early")
		}
	}
	for i := 0; i < 2; i++ {
		if !b.Allow(ctx, "login:192.0.2.1", auth).Allowed {
			t.Fatal("refused early on the second instance")
		}
	}
	d := b.Allow(ctx, "login:192.0.2.1", auth)
	if d.Allowed || d.RetryAfter < 2*time.Minute || d.RetryAfter > 3*time.Minute {
		t.Fatalf("sixth attempt across instances: %+v (want refused, retry ≈ 3 min)", d)
	}
	if p := a.Peek(ctx, "login:192.0.2.1", auth); p.Allowed || p.RetryAfter < 2*time.Minute || p.RetryAfter > 3*time.Minute {
		t.Fatalf("peek on an exhausted key: %+v", p)
	}
	if !a.Allow(ctx, "login:192.0.2.2", auth).Allowed {
		t.Fatal("another IP is limited too")
	}
	if ratelimit.LocalKeys(a) != 0 {
		t.Fatal("the in-process fallback was used while Redis was up")
	}
}

func TestPeekDoesNotCount(t *testing.T) {
	t.Parallel()
	rc, prefix := testenv.Redis(t)
	clk := authtest.NewClock(time.Now())
	for name, l := range map[string]*ratelimit.Limiter{
		"redis":   ratelimit.New(rc, prefix, clk, testenv.Discard()),
		"process": ratelimit.New(nil, "", clk, testenv.Discard()),
	} {
		for i := 0; i < 20; i++ {
			if !l.Peek(context.Background(), "k", auth).Allowed {
				t.Fatalf("%s: peek refused", name)
			}
		}
		exhaust(t, l, "k")
		if l.Peek(context.Background(), "k", auth).Allowed {
			t.Fatalf("%s: peek allowed on an exhausted key", name)
		}
	}
}

// With Redis down the limiter still limits, in process, and refills on the injected clock.
func TestRedisDownFallsBackInProcess(t *testing.T) {
	t.Parallel()
	clk := authtest.NewClock(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
	l := ratelimit.New(authtest.DownRedis(), "x:", clk, testenv.Discard())
	d := exhaust(t, l, "login:198.51.100.7")
	if d.RetryAfter != 3*time.Minute {
		t.Fatalf("retry after %v, want 3m", d.RetryAfter)
	}
	clk.Advance(3 * time.Minute)
	if !l.Allow(context.Background(), "login:198.51.100.7", auth).Allowed {
		t.Fatal("no attempt allowed after one refill interval")
	}
	if l.Allow(context.Background(), "login:198.51.100.7", auth).Allowed {
		t.Fatal("two attempts allowed after one refill interval")
	}
	clk.Advance(15 * time.Minute)
	exhaust(t, l, "login:198.51.100.7")
}

// After a Redis error the limiter stays in process for cache.Pause, then tries again.
func TestRedisPauseAfterAnError(t *testing.T) {
	t.Parallel()
	clk := authtest.NewClock(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
	rc := authtest.DownRedis()
	calls := &authtest.Calls{}
	rc.AddHook(calls)
	l := ratelimit.New(rc, "x:", clk, testenv.Discard())
	for i := 0; i < 4; i++ {
		l.Allow(context.Background(), "k", auth)
	}
	if n := calls.N.Load(); n != 1 {
		t.Fatalf("%d Redis calls during the pause, want 1", n)
	}
	clk.Advance(cache.Pause)
	l.Allow(context.Background(), "k", auth)
	if n := calls.N.Load(); n != 2 {
		t.Fatalf("Redis not tried again after the pause (%d calls)", n)
	}
}

func TestLocalCapacityFailsClosedAndSweeps(t *testing.T) {
	t.Parallel()
	clk := authtest.NewClock(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
	l := ratelimit.New(nil, "", clk, testenv.Discard(), ratelimit.WithMaxLocalKeys(2))
	ctx := context.Background()
	l.Allow(ctx, "a", auth)
	l.Allow(ctx, "b", auth)
	if d := l.Allow(ctx, "c", auth); d.Allowed {
		t.Fatal("a third key was admitted past the capacity while the others are in use")
	}
	clk.Advance(15 * time.Minute)
	if d := l.Allow(ctx, "c", auth); !d.Allowed {
		t.Fatalf("idle buckets were not swept: %+v", d)
	}
	if n := ratelimit.LocalKeys(l); n != 1 {
		t.Fatalf("%d buckets kept, want 1", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, 10 * time.Millisecond: 1, 1500 * time.Millisecond: 2, 3 * time.Minute: 180} {
		if got := ratelimit.RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
