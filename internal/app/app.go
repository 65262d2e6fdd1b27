// Package app binds the route-and-job table (internal/routes) to handlers and jobs. It
// knows no feature: each function's assembly (app/<name>fn) hands it the handlers, the
// guards and the jobs, so a function links only the features it serves.
package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/routes"
)

// Core is what every function holds once per process (per Lambda cold start): the
// database pool, the optional cache, the clock and the logger. It is passed by value to
// constructors; nothing changes it after construction.
type Core struct {
	Pool   *pgxpool.Pool
	Redis  *redis.Client // nil: no cache
	Clock  clock.Clock
	Logger *slog.Logger
	// CORS is the dashboard origins allowed to call the API (empty: none).
	CORS []string
	// KeyPrefix namespaces the cache keys (tests sharing one Redis); empty in production.
	KeyPrefix string
	// Breaker keeps the cache's users off a failing Redis for a while (nil: always try).
	Breaker *cache.Breaker
}

// Cache is the JSON cache over Core's Redis, prefix and breaker.
func (c Core) Cache() cache.Store {
	return cache.Store{Redis: c.Redis, Prefix: c.KeyPrefix, Breaker: c.Breaker, Logger: c.Logger}
}

// OpenCore connects to the database (sized by profile) and to the cache when redisURL is
// set; an unreachable cache is logged and the function runs without it.
func OpenCore(ctx context.Context, databaseURL, redisURL string, cors []string, profile db.Profile, logger *slog.Logger) (Core, error) {
	pcfg, err := db.Config(databaseURL, profile)
	if err != nil {
		return Core{}, err
	}
	db.WatchOutages(pcfg, logger)
	pool, err := db.Open(ctx, pcfg)
	if err != nil {
		return Core{}, err
	}
	rc, err := cache.Open(ctx, redisURL, logger)
	if err != nil {
		pool.Close()
		return Core{}, err
	}
	clk := clock.System{}
	return Core{Pool: pool, Redis: rc, Clock: clk, Logger: logger, CORS: cors, Breaker: cache.NewBreaker(clk, 0)}, nil
}

// Close releases the connections.
func (c Core) Close() {
	if c.Redis != nil {
		_ = c.Redis.Close()
	}
	if c.Pool != nil {
		c.Pool.Close()
	}
}

// JobFunc is a scheduled task run at now (the instant its schedule fired).
type JobFunc func(ctx context.Context, now time.Time) error

// Job is a runnable row of routes.Jobs().
type Job struct {
	routes.Job
	Run JobFunc
}
