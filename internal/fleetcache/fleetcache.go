// Package fleetcache holds the spec's per-client machine caches (machines:list:<clientID>,
// 30 s; machines:count:<clientID>, 1 min) and their one invalidation, which every write
// that changes what a machine list shows calls after it commits.
package fleetcache

import (
	"context"
	"errors"
	"time"

	json "github.com/goccy/go-json"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/cache"
)

// TTLs from the spec ("Cache Redis").
const (
	ListTTL  = 30 * time.Second
	CountTTL = time.Minute
)

// ListKey is the Redis hash holding a client's cached list pages (one field per query).
func ListKey(clientID string) string { return "machines:list:" + clientID }

// CountKey is the Redis hash holding a client's cached machine count.
func CountKey(clientID string) string { return "machines:count:" + clientID }

// versionKey counts a client's invalidations. A page is cached under the version read
// before its query ran, so a page computed before a change can never be served after it:
// readers look for the current version's field only.
func versionKey(clientID string) string { return "machines:version:" + clientID }

// Invalidate drops a client's cached lists and count and moves its version on. Call it
// after the change has committed. Redis errors are logged (the entries then expire on
// their own within their TTL).
func Invalidate(ctx context.Context, s cache.Store, clientID string) {
	if s.Redis == nil {
		return
	}
	pipe := s.Redis.TxPipeline()
	pipe.Incr(ctx, s.Key(versionKey(clientID)))
	pipe.Expire(ctx, s.Key(versionKey(clientID)), 24*time.Hour)
	pipe.Del(ctx, s.Key(ListKey(clientID)), s.Key(CountKey(clientID)))
	if _, err := pipe.Exec(ctx); err != nil {
		s.Failed(ctx, "invalidate machines of "+clientID, err)
	}
}

// Page is a cached entry — a list page or the count: Get it, and on a miss compute it
// and Put it with the same Page value (it remembers the version the miss saw).
type Page struct {
	store cache.Store
	key   string // the Redis hash (machines:list:<id> or machines:count:<id>)
	ttl   time.Duration
	field string
	ok    bool // Redis answered the version read
}

// GetPage looks up the page of clientID for query (any string naming the query: its
// normalised parameters) and decodes it into dst when cached.
func GetPage(ctx context.Context, s cache.Store, clientID, query string, dst any) (Page, bool) {
	return lookup(ctx, s, clientID, ListKey(clientID), ListTTL, query, dst)
}

// Count returns the client's live machine count: the cached one, or fill's answer (a
// database count), which is then cached under the version read before fill ran, so a
// count taken before a change is never served after it.
func Count(ctx context.Context, s cache.Store, clientID string, fill func() (int, error)) (int, error) {
	var n int
	p, hit := lookup(ctx, s, clientID, CountKey(clientID), CountTTL, "n", &n)
	if hit && n >= 0 {
		return n, nil
	}
	n, err := fill()
	if err != nil {
		return 0, err
	}
	p.Put(ctx, n)
	return n, nil
}

func lookup(ctx context.Context, s cache.Store, clientID, key string, ttl time.Duration, field string, dst any) (Page, bool) {
	p := Page{store: s, key: s.Key(key), ttl: ttl}
	if !s.Enabled() {
		return p, false
	}
	v, err := s.Redis.Get(ctx, s.Key(versionKey(clientID))).Result()
	switch {
	case errors.Is(err, redis.Nil):
		v = "0"
	case err != nil:
		s.Failed(ctx, "read machines version", err)
		return p, false
	}
	p.ok, p.field = true, v+":"+field
	b, err := s.Redis.HGet(ctx, p.key, p.field).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			s.Failed(ctx, "read "+key, err)
		}
		return p, false
	}
	return p, json.Unmarshal(b, dst) == nil
}

// Put caches v as the entry Get missed. The hash expires its TTL after its first entry,
// so nothing outlives the spec's lifetimes (30 s for lists, 1 min for the count).
func (p Page) Put(ctx context.Context, v any) {
	if !p.ok || !p.store.Enabled() {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	pipe := p.store.Redis.TxPipeline()
	pipe.HSet(ctx, p.key, p.field, b)
	pipe.ExpireNX(ctx, p.key, p.ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		p.store.Failed(ctx, "write "+p.key, err)
	}
}
