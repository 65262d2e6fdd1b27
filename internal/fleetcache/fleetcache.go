// Package fleetcache holds the spec's per-client machine caches (machines:list:<clientID>,
// 30 s; machines:count:<clientID>, 1 min) and their one invalidation, which every write
// that changes what a machine list shows calls after it commits.
package fleetcache

import (
	"context"
	"errors"
	"strconv"
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

// CountKey is a client's cached machine count.
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

// Page is a cached list page: Get it, and on a miss compute it and Put it with the same
// Page value (it remembers the version the miss saw).
type Page struct {
	store    cache.Store
	clientID string
	field    string
	version  string
	ok       bool // Redis answered the version read
}

// GetPage looks up the page of clientID for query (any string naming the query: its
// normalised parameters) and decodes it into dst when cached.
func GetPage(ctx context.Context, s cache.Store, clientID, query string, dst any) (Page, bool) {
	p := Page{store: s, clientID: clientID}
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
	p.version, p.ok = v, true
	p.field = v + ":" + query
	b, err := s.Redis.HGet(ctx, s.Key(ListKey(clientID)), p.field).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			s.Failed(ctx, "read machines list", err)
		}
		return p, false
	}
	return p, json.Unmarshal(b, dst) == nil
}

// Put caches v as the page GetPage missed. The hash expires ListTTL after its first page,
// so no page outlives the spec's 30 seconds.
func (p Page) Put(ctx context.Context, v any) {
	if !p.ok || !p.store.Enabled() {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	key := p.store.Key(ListKey(p.clientID))
	pipe := p.store.Redis.TxPipeline()
	pipe.HSet(ctx, key, p.field, b)
	pipe.ExpireNX(ctx, key, ListTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		p.store.Failed(ctx, "write machines list", err)
	}
}

// Count returns the client's cached machine count, if any.
func Count(ctx context.Context, s cache.Store, clientID string) (int, bool) {
	if !s.Enabled() {
		return 0, false
	}
	v, err := s.Redis.Get(ctx, s.Key(CountKey(clientID))).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			s.Failed(ctx, "read machines count", err)
		}
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}
