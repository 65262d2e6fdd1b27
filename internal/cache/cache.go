// Package cache connects to the optional Redis cache. The service must work without it:
// callers treat a nil client, or any Redis error, as a cache miss.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Open returns a client for url, or nil when url is empty. An unreachable server is
// logged, not fatal: the client reconnects by itself when Redis comes back.
func Open(ctx context.Context, url string, logger *slog.Logger) (*redis.Client, error) {
	if url == "" {
		logger.InfoContext(ctx, "cache: REDIS_URL not set, running without Redis")
		return nil, nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL cannot be parsed")
	}
	// go-redis writes its own messages with the standard library's log package: plain-text
	// lines in the middle of the JSON log. Route them through ours. (SetLogger sets a
	// variable of go-redis; every Open of a process passes that process's logger.)
	redis.SetLogger(slogAdapter{logger})
	// Short timeouts: a slow cache must cost a request little before we fall back.
	opt.DialTimeout = 500 * time.Millisecond
	opt.ReadTimeout = 250 * time.Millisecond
	opt.WriteTimeout = 250 * time.Millisecond
	opt.MaxRetries = 1
	// go-redis dials 5 times by default: ~0.6 s per call against a dead server.
	opt.DialerRetries = 1
	c := redis.NewClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Ping(pingCtx).Err(); err != nil {
		logger.WarnContext(ctx, "cache: Redis unreachable at start-up, continuing without it until it answers", "error", err.Error())
	}
	return c, nil
}

// slogAdapter is go-redis's logging interface on top of slog (warnings: go-redis logs
// what went wrong, such as failed dials).
type slogAdapter struct{ logger *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.logger.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "source", "go-redis")
}
