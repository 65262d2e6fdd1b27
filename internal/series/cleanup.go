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

// DeleteClientData removes one client's time-series rows older than its licence allows:
// metrics, disks, SMART and aggregates before metricsBefore, events before eventsBefore,
// each table in one statement (the retention package bounds the span of each instead).
// DELETE ... USING machines joins once instead of running a subquery per row (spec "DELETE
// avec JOIN"); on compressed chunks TimescaleDB removes the matching segments (compression
// is segmented by machine, so a client's rows are whole batches).
//
// The hourly aggregates follow the metrics retention. Plain rollup tables (postgres mode)
// are deleted here. Continuous aggregates (timescale mode) cannot be deleted from: the
// deletions invalidate their buckets, and re-materialising the range (rollup.Refresher)
// drops the buckets left without data.
func DeleteClientData(ctx context.Context, q db.Querier, mode, clientID string, metricsBefore, eventsBefore time.Time) (Deleted, error) {
	out := Deleted{}
	for _, t := range ClientTables(mode) {
		before := metricsBefore
		if t.Events {
			before = eventsBefore
		}
		n, err := DeleteClientBefore(ctx, q, t, clientID, before)
		if err != nil {
			return out, err
		}
		out[t.Table] = n
	}
	return out, nil
}

// PurgeDeletedMachines removes up to limit machines deleted from the dashboard
// (machines.deleted_at set), oldest deletion first, each in its own transaction: its rows
// in metrics, disk_info, event_logs and smart_data (and in postgres mode the hourly rollup
// tables), then the machine row, whose other rows (inventory, certificates, baselines...)
// cascade. The series have no foreign key to machines (migration 00010: drop_chunks
// would lock machines), so this is the only place they are deleted with their machine:
// anything that deletes machines rows must delete the series first, as here. A deletion
// in the dashboard (soft) never waits on them; compression is segmented by machine, so
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

// Retained is a per-client table under licence retention: its time column and whether
// the events figure (EventsRetentionDays) or the metrics figure governs it.
type Retained struct {
	Table, Column string
	Events        bool
	// Aggregated: its rows feed the hourly continuous aggregates (timescale mode), which
	// must be re-materialised over the range deleted.
	Aggregated bool
}

// ClientTables lists the per-client retention tables of mode (spec "Tables avec rétention
// par licence"): the raw series, metric_aggregates, and in postgres mode the hourly
// rollup tables, which follow the metrics retention (in timescale mode they are continuous
// aggregates, re-materialised over the deleted range instead).
func ClientTables(mode string) []Retained {
	tables := []Retained{
		{Table: "metrics", Column: "recorded_at", Aggregated: true},
		{Table: "disk_info", Column: "recorded_at", Aggregated: true},
		{Table: "smart_data", Column: "recorded_at"},
		{Table: "event_logs", Column: "recorded_at", Events: true},
		{Table: "metric_aggregates", Column: "period_start"},
	}
	if mode != "timescale" {
		tables = append(tables,
			Retained{Table: "metrics_hourly", Column: "bucket"},
			Retained{Table: "disk_hourly", Column: "bucket"},
			Retained{Table: "network_hourly", Column: "bucket"})
	}
	return tables
}

// OldestClientRow returns the time of the client's oldest row of t before `before`, and
// false when it has none. It reads each machine's first row through the (machine_id,
// time) key, so it costs one index probe per machine of the client.
func OldestClientRow(ctx context.Context, q db.Querier, t Retained, clientID string, before time.Time) (time.Time, bool, error) {
	var oldest *time.Time
	// Table and column names come from ClientTables, never from input.
	err := q.QueryRow(ctx, `SELECT min(o.at) FROM machines m,
		LATERAL (SELECT t.`+t.Column+` AS at FROM `+t.Table+` t
		         WHERE t.machine_id = m.id AND t.`+t.Column+` < $2
		         ORDER BY t.`+t.Column+` LIMIT 1) o
		WHERE m.client_id = $1`, clientID, before).Scan(&oldest)
	if err != nil {
		return time.Time{}, false, db.Error(err, "cleanup: oldest row of "+t.Table)
	}
	if oldest == nil {
		return time.Time{}, false, nil
	}
	return *oldest, true, nil
}

// DeleteClientBefore deletes the client's rows of t older than before, in one DELETE ...
// USING machines (the spec's join form: one join, no subquery per row). Callers bound
// the span of one statement (see retention) so no statement holds its locks for long.
func DeleteClientBefore(ctx context.Context, q db.Querier, t Retained, clientID string, before time.Time) (int64, error) {
	// Table and column names come from ClientTables, never from input.
	tag, err := q.Exec(ctx, `DELETE FROM `+t.Table+` t USING machines m
		WHERE t.machine_id = m.id AND m.client_id = $1 AND t.`+t.Column+` < $2`, clientID, before)
	if err != nil {
		return 0, db.Error(err, "cleanup "+t.Table)
	}
	return tag.RowsAffected(), nil
}
