package fleetcache_test

import (
	"context"
	"testing"

	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A page or count computed before a change and stored after its invalidation (a slow
// reader racing a writer) is never served: readers look under the new version.
func TestNothingComputedBeforeAnInvalidationIsServedAfterIt(t *testing.T) {
	rc, prefix := testenv.Redis(t)
	s := cache.Store{Redis: rc, Prefix: prefix, Logger: testenv.Discard()}
	ctx := context.Background()
	const client = "c1"

	var got []string
	slow, hit := fleetcache.GetPage(ctx, s, client, "q", &got) // a reader misses...
	if hit {
		t.Fatal("hit on an empty cache")
	}
	fleetcache.Invalidate(ctx, s, client) // ...a writer commits and invalidates...
	slow.Put(ctx, []string{"stale"})      // ...and the reader stores what it read before.
	if _, hit := fleetcache.GetPage(ctx, s, client, "q", &got); hit {
		t.Fatalf("the page computed before the invalidation is served: %v", got)
	}
	fresh, _ := fleetcache.GetPage(ctx, s, client, "q", &got)
	fresh.Put(ctx, []string{"fresh"})
	if _, hit := fleetcache.GetPage(ctx, s, client, "q", &got); !hit || got[0] != "fresh" {
		t.Fatalf("fresh page: hit %v, %v", hit, got)
	}
	if ttl := rc.TTL(ctx, prefix+fleetcache.ListKey(client)).Val(); ttl <= 0 || ttl > fleetcache.ListTTL {
		t.Fatalf("list TTL %v", ttl)
	}

	calls := 0
	count := func(n int) func() (int, error) { return func() (int, error) { calls++; return n, nil } }
	if n, _ := fleetcache.Count(ctx, s, client, count(7)); n != 7 {
		t.Fatalf("count %d", n)
	}
	if n, _ := fleetcache.Count(ctx, s, client, count(99)); n != 7 || calls != 1 {
		t.Fatalf("second count %d after %d fills, want the cached 7", n, calls)
	}
	fleetcache.Invalidate(ctx, s, client)
	if n, _ := fleetcache.Count(ctx, s, client, count(8)); n != 8 {
		t.Fatalf("count after invalidation %d, want 8", n)
	}
	if ttl := rc.TTL(ctx, prefix+fleetcache.CountKey(client)).Val(); ttl <= 0 || ttl > fleetcache.CountTTL {
		t.Fatalf("count TTL %v", ttl)
	}

	// Redis down: every call is a miss and a count comes from fill.
	down := cache.Store{Redis: authtest.DownRedis(), Logger: testenv.Discard()}
	if n, err := fleetcache.Count(ctx, down, client, count(3)); err != nil || n != 3 {
		t.Fatalf("count with Redis down: %d %v", n, err)
	}
	fleetcache.Invalidate(ctx, down, client)
}
