package series

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
)

// Deleted counts rows removed per table.
type Deleted map[string]int64

type retained struct {
	table, column string
	before        time.Time
}

// DeleteClientData removes one client's time-series rows older than its licence allows:
// metrics, disks, SMART and aggregates before metricsBefore, events before eventsBefore.
// DELETE ... USING machines joins once instead of running a subquery per row (spec "DELETE
// avec JOIN"); on compressed chunks TimescaleDB removes the matching segments (compression
// is segmented by machine, so a client's rows are whole batches).
//
// The hourly aggregates follow the metrics retention. Plain rollup tables (postgres mode)
// are deleted here. Continuous aggregates (timescale mode) cannot be deleted from: the
// deletions invalidate their buckets, and re-materialising the range (rollup.Refresher)
// drops the buckets left without data.
func DeleteClientData(ctx context.Context, q db.Querier, mode, clientID string, metricsBefore, eventsBefore time.Time) (Deleted, error) {
	tables := []retained{
		{"metrics", "recorded_at", metricsBefore},
		{"disk_info", "recorded_at", metricsBefore},
		{"smart_data", "recorded_at", metricsBefore},
		{"event_logs", "recorded_at", eventsBefore},
		{"metric_aggregates", "period_start", metricsBefore},
	}
	if mode != "timescale" {
		tables = append(tables,
			retained{"metrics_hourly", "bucket", metricsBefore},
			retained{"disk_hourly", "bucket", metricsBefore},
			retained{"network_hourly", "bucket", metricsBefore})
	}
	out := Deleted{}
	for _, t := range tables {
		// Table and column names come from the list above, never from input.
		tag, err := q.Exec(ctx, `DELETE FROM `+t.table+` t USING machines m
			WHERE t.machine_id = m.id AND m.client_id = $1 AND t.`+t.column+` < $2`, clientID, t.before)
		if err != nil {
			return out, db.Error(err, "cleanup "+t.table)
		}
		out[t.table] = tag.RowsAffected()
	}
	return out, nil
}

// PurgeDeletedMachines removes up to limit machines deleted from the dashboard
// (machines.deleted_at set), oldest deletion first, each in its own transaction: its rows
// in metrics, disk_info, event_logs and smart_data (and in postgres mode the hourly rollup
// tables), then the machine row, whose other rows (inventory, certificates, baselines...)
// cascade. The series are deleted by machine here, not by foreign-key cascade, so a
// deletion in the dashboard never waits on them; compression is segmented by machine, so
// on compressed chunks these deletes drop whole batches.
//
// In timescale mode the continuous aggregates cannot be deleted from: the raw deletes
// invalidate their buckets, the refresh policy (31 days) drops the machine's recent
// buckets on its next run, and older ones, which no query can reach any more (the machine
// is gone), age out under the aggregates' 365-day retention.
func PurgeDeletedMachines(ctx context.Context, pool *pgxpool.Pool, mode string, limit int) (machines int, deleted Deleted, err error) {
	rows, err := pool.Query(ctx, `SELECT id FROM machines WHERE deleted_at IS NOT NULL ORDER BY deleted_at, id LIMIT $1`, limit)
	if err != nil {
		return 0, nil, db.Error(err, "purge: deleted machines")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, nil, db.Error(err, "purge: deleted machines")
	}
	tables := []string{"metrics", "disk_info", "event_logs", "smart_data"}
	if mode != "timescale" {
		tables = append(tables, "metrics_hourly", "disk_hourly", "network_hourly")
	}
	deleted = Deleted{}
	for _, id := range ids {
		counts := Deleted{}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for _, t := range tables {
				// Table names come from the list above, never from input.
				tag, err := tx.Exec(ctx, `DELETE FROM `+t+` WHERE machine_id = $1`, id)
				if err != nil {
					return db.Error(err, "purge "+t)
				}
				counts[t] = tag.RowsAffected()
			}
			_, err := tx.Exec(ctx, `DELETE FROM machines WHERE id = $1 AND deleted_at IS NOT NULL`, id)
			return db.Error(err, "purge machine")
		})
		if err != nil {
			return machines, deleted, fmt.Errorf("machine %s: %w", id, err)
		}
		machines++
		for t, n := range counts {
			deleted[t] += n
		}
	}
	return machines, deleted, nil
}
