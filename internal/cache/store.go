package cache

import (
	"context"
	"errors"
	"log/slog"
	"time"

	json "github.com/goccy/go-json"
	"github.com/redis/go-redis/v9"
)

// Store reads and writes JSON values in the optional Redis cache under the deployment's
// key prefix. Every method degrades to a miss (or a no-op) when Redis is absent, failing,
// or paused by the breaker: callers always have the database to fall back on.
type Store struct {
	Redis   *redis.Client // nil: no cache
	Prefix  string        // namespaces keys (deployments or test runs sharing a server)
	Breaker *Breaker      // nil: Redis is tried on every call
	Logger  *slog.Logger
}

// Enabled tells whether Redis may be tried now.
func (s Store) Enabled() bool {
	return s.Redis != nil && (s.Breaker == nil || s.Breaker.Ready())
}

// Key returns key with the store's prefix, for callers issuing their own commands.
func (s Store) Key(key string) string { return s.Prefix + key }

// Get decodes the value at key into dst and reports whether it was there.
func (s Store) Get(ctx context.Context, key string, dst any) bool {
	if !s.Enabled() {
		return false
	}
	b, err := s.Redis.Get(ctx, s.Key(key)).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			s.Failed(ctx, "read "+key, err)
		}
		return false
	}
	return json.Unmarshal(b, dst) == nil
}

// Set stores v at key for ttl.
func (s Store) Set(ctx context.Context, key string, v any, ttl time.Duration) {
	if !s.Enabled() {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	if err := s.Redis.Set(ctx, s.Key(key), b, ttl).Err(); err != nil {
		s.Failed(ctx, "write "+key, err)
	}
}

// Delete removes keys. It is tried even while the breaker is open: an invalidation that
// can reach Redis must not be skipped.
func (s Store) Delete(ctx context.Context, keys ...string) {
	if s.Redis == nil || len(keys) == 0 {
		return
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = s.Key(k)
	}
	if err := s.Redis.Del(ctx, full...).Err(); err != nil {
		s.Failed(ctx, "delete", err)
	}
}

// Failed records a Redis failure: it is logged and the breaker keeps callers off Redis
// for a while.
func (s Store) Failed(ctx context.Context, op string, err error) {
	if s.Breaker != nil {
		s.Breaker.Fail()
	}
	if s.Logger != nil {
		s.Logger.WarnContext(ctx, "cache: Redis unavailable, using the database", "op", op, "error", err.Error())
	}
}
