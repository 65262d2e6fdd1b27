package enrol

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/db"
)

// MachineCountTTL is the spec's cache lifetime for a client's machine count.
const MachineCountTTL = time.Minute

// MachineCountKey is the spec's cache key for a client's machine count.
func MachineCountKey(clientID string) string { return "machines:count:" + clientID }

// MachineListKey is the spec's cache key for a client's machine list (dashboard).
func MachineListKey(clientID string) string { return "machines:list:" + clientID }

// MachineCount reads a client's machine count through the optional Redis cache. Redis
// errors are cache misses: the count then comes from the database.
type MachineCount struct {
	Redis  *redis.Client // nil: no cache
	Logger *slog.Logger
}

// Get returns the client's machine count: the cached value, or a database count that is
// then cached (SET NX: never over a value a writer has just set) for MachineCountTTL.
func (c MachineCount) Get(ctx context.Context, q db.Querier, clientID string) (int, error) {
	if c.Redis != nil {
		v, err := c.Redis.Get(ctx, MachineCountKey(clientID)).Result()
		if err == nil {
			if n, perr := strconv.Atoi(v); perr == nil && n >= 0 {
				return n, nil
			}
		} else if !errors.Is(err, redis.Nil) {
			c.warn(ctx, "read", err)
		}
	}
	n, err := CountMachines(ctx, q, clientID)
	if err != nil {
		return 0, err
	}
	if c.Redis != nil {
		if err := c.Redis.SetNX(ctx, MachineCountKey(clientID), n, MachineCountTTL).Err(); err != nil {
			c.warn(ctx, "fill", err)
		}
	}
	return n, nil
}

// Set records a count a writer knows to be exact (bootstrap, under the client's lock).
func (c MachineCount) Set(ctx context.Context, clientID string, n int) {
	if c.Redis == nil {
		return
	}
	if err := c.Redis.Set(ctx, MachineCountKey(clientID), n, MachineCountTTL).Err(); err != nil {
		c.warn(ctx, "set", err)
	}
}

// Invalidate drops the client's cached machine count and list: every creation or
// deletion of a machine calls it (spec InvalidateMachineCache).
func (c MachineCount) Invalidate(ctx context.Context, clientID string) {
	if c.Redis == nil {
		return
	}
	if err := c.Redis.Del(ctx, MachineCountKey(clientID), MachineListKey(clientID)).Err(); err != nil {
		c.warn(ctx, "invalidate", err)
	}
}

func (c MachineCount) warn(ctx context.Context, op string, err error) {
	if c.Logger != nil {
		c.Logger.WarnContext(ctx, "machine count cache unavailable, using the database", "op", op, "error", err.Error())
	}
}

// CountMachines counts the client's machines in the database.
func CountMachines(ctx context.Context, q db.Querier, clientID string) (int, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM machines WHERE client_id = $1 AND deleted_at IS NULL`, clientID).Scan(&n); err != nil {
		return 0, db.Error(err, "enrol: count machines")
	}
	return n, nil
}
