package series

import (
	"context"
	"time"

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
