package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/ratelimit"
	"github.com/optralis/optralis/internal/testenv"
)

// TestRefund gives back attempts the server failed (a database outage), with Redis and in
// process: a refunded attempt can be made again, and refunds never fill a bucket beyond
// its burst.
func TestRefund(t *testing.T) {
	t.Parallel()
	rc, prefix := testenv.Redis(t)
	clk := authtest.NewClock(time.Now())
	ctx := context.Background()
	for name, l := range map[string]*ratelimit.Limiter{
		"redis":      ratelimit.New(rc, prefix+"refund:", clk, testenv.Discard()),
		"in process": ratelimit.New(nil, "", clk, testenv.Discard()),
	} {
		// Refunds on a fresh or full bucket add nothing.
		for i := 0; i < 3; i++ {
			l.Refund(ctx, "hb:192.0.2.9", auth)
		}
		exhaust(t, l, "hb:192.0.2.9")
		l.Refund(ctx, "hb:192.0.2.9", auth)
		if d := l.Allow(ctx, "hb:192.0.2.9", auth); !d.Allowed {
			t.Fatalf("%s: the refunded attempt is refused: %+v", name, d)
		}
		if d := l.Allow(ctx, "hb:192.0.2.9", auth); d.Allowed {
			t.Fatalf("%s: one refund allowed two attempts", name)
		}
	}
}
