package enrol

import (
	"context"
	"strconv"

	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/fleetcache"
)

// MachineCount reads a client's machine count through the optional cache
// (fleetcache.CountKey under the deployment's prefix). Redis errors are cache misses: the
// count then comes from the database.
type MachineCount struct {
	Cache cache.Store
}

// Get returns the client's machine count: the cached value, or a database count that is
// then cached (SET NX: never over a value a writer has just set) for fleetcache.CountTTL.
func (c MachineCount) Get(ctx context.Context, q db.Querier, clientID string) (int, error) {
	if n, ok := fleetcache.Count(ctx, c.Cache, clientID); ok {
		return n, nil
	}
	n, err := CountMachines(ctx, q, clientID)
	if err != nil {
		return 0, err
	}
	if c.Cache.Enabled() {
		if err := c.Cache.Redis.SetNX(ctx, c.Cache.Key(fleetcache.CountKey(clientID)), strconv.Itoa(n), fleetcache.CountTTL).Err(); err != nil {
			c.Cache.Failed(ctx, "fill machines count", err)
		}
	}
	return n, nil
}

// Set records a count a writer knows to be exact (bootstrap, under the client's lock).
func (c MachineCount) Set(ctx context.Context, clientID string, n int) {
	c.Cache.Set(ctx, fleetcache.CountKey(clientID), n, fleetcache.CountTTL)
}

// CountMachines counts the client's live machines in the database.
func CountMachines(ctx context.Context, q db.Querier, clientID string) (int, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM machines WHERE client_id = $1 AND deleted_at IS NULL`, clientID).Scan(&n); err != nil {
		return 0, db.Error(err, "enrol: count machines")
	}
	return n, nil
}
