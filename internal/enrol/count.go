package enrol

import (
	"context"

	"github.com/optralis/optralis/internal/db"
)

// CountMachines counts the client's live machines in the database. The licence check
// calls it under the client's lock, so the count it enforces is exact; the dashboards read
// the cached count (fleetcache.Count), which a cache failure could leave stale for a
// minute — acceptable on a screen, not for the licence.
func CountMachines(ctx context.Context, q db.Querier, clientID string) (int, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM machines WHERE client_id = $1 AND deleted_at IS NULL`, clientID).Scan(&n); err != nil {
		return 0, db.Error(err, "enrol: count machines")
	}
	return n, nil
}
