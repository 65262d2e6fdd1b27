package cache_test

import (
	"testing"
	"time"

	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/cache"
)

func TestBreakerPausesAfterAFailure(t *testing.T) {
	clk := authtest.NewClock(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
	b := cache.NewBreaker(clk, 0)
	if !b.Ready() {
		t.Fatal("a new breaker keeps callers off Redis")
	}
	if pause := b.Fail(); pause != cache.Pause {
		t.Fatalf("default pause %v, want %v", pause, cache.Pause)
	}
	clk.Advance(cache.Pause - time.Nanosecond)
	if b.Ready() {
		t.Fatal("Redis tried again before the pause ended")
	}
	clk.Advance(time.Nanosecond)
	if !b.Ready() {
		t.Fatal("Redis not tried again once the pause ended")
	}
	if pause := cache.NewBreaker(clk, time.Minute).Fail(); pause != time.Minute {
		t.Fatalf("custom pause %v", pause)
	}
}
