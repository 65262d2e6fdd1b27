// Package rollup refreshes the hourly aggregates (metrics_hourly, disk_hourly,
// network_hourly) in either time-series mode.
package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
)

// Views are the hourly aggregates, continuous aggregates or tables depending on the mode.
func views() []string { return []string{"metrics_hourly", "disk_hourly", "network_hourly"} }

// Refresher brings the aggregates up to date for a window of raw data.
type Refresher struct {
	Pool *pgxpool.Pool
	Mode string // migrate.ModeTimescale or migrate.ModePostgres
}

// Refresh materialises the whole hours in [from, to). In timescale mode it asks TimescaleDB
// (refresh_continuous_aggregate, retrying SQLSTATE 55P03 while a policy refresh of the
// same aggregate runs: db.RetryLockNotAvailable); in postgres mode it recomputes those buckets from the raw
// tables and upserts them, so a re-run gives the same rows.
func (r Refresher) Refresh(ctx context.Context, from, to time.Time) error {
	from, to = from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour)
	if !from.Before(to) {
		return nil
	}
	if r.Mode == migrate.ModeTimescale {
		for _, v := range views() {
			// refresh_continuous_aggregate cannot run inside a transaction block; pgx's
			// simple Exec on the pool runs it on its own. A refresh policy running on the
			// same aggregate makes it fail with 55P03: retried with backoff.
			err := db.RetryLockNotAvailable(ctx, db.RefreshBackoff(), func(ctx context.Context) error {
				_, err := r.Pool.Exec(ctx, `CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz)`, v, from, to)
				return err
			})
			if err != nil {
				return fmt.Errorf("refreshing %s: %w", v, err)
			}
		}
		return nil
	}
	for _, q := range postgresRefresh() {
		if _, err := r.Pool.Exec(ctx, q, from, to); err != nil {
			return fmt.Errorf("refreshing rollups: %w", err)
		}
	}
	return nil
}

// Job is the hourly refresh: the last 3 hours in postgres mode (late heartbeats included),
// nothing in timescale mode where TimescaleDB's own policy does it.
func (r Refresher) Job(ctx context.Context, now time.Time) error {
	if r.Mode == migrate.ModeTimescale {
		return nil
	}
	return r.Refresh(ctx, now.Add(-3*time.Hour), now)
}

// Initial is the deploy-time backfill: every hour the longest retention can hold, up to
// the last complete hour (the spec's "rafraîchissement initial").
func (r Refresher) Initial(ctx context.Context, now time.Time) error {
	return r.Refresh(ctx, now.AddDate(0, 0, -366), now)
}

func postgresRefresh() []string {
	return []string{
		`INSERT INTO metrics_hourly (bucket, machine_id, cpu_avg, cpu_min, cpu_max, ram_avg, ram_min, ram_max,
	        cpu_temp_avg, cpu_temp_min, cpu_temp_max, sample_count)
	 SELECT date_trunc('hour', recorded_at), machine_id,
	        avg(cpu_percent), min(cpu_percent), max(cpu_percent),
	        avg(ram_percent), min(ram_percent), max(ram_percent),
	        avg(cpu_temp), min(cpu_temp), max(cpu_temp), count(*)
	 FROM metrics WHERE recorded_at >= $1 AND recorded_at < $2
	 GROUP BY 1, 2
	 ON CONFLICT (machine_id, bucket) DO UPDATE SET
	        cpu_avg = EXCLUDED.cpu_avg, cpu_min = EXCLUDED.cpu_min, cpu_max = EXCLUDED.cpu_max,
	        ram_avg = EXCLUDED.ram_avg, ram_min = EXCLUDED.ram_min, ram_max = EXCLUDED.ram_max,
	        cpu_temp_avg = EXCLUDED.cpu_temp_avg, cpu_temp_min = EXCLUDED.cpu_temp_min,
	        cpu_temp_max = EXCLUDED.cpu_temp_max, sample_count = EXCLUDED.sample_count`,
		`INSERT INTO disk_hourly (bucket, machine_id, mount_point, disk_usage_avg, disk_usage_max, sample_count)
	 SELECT date_trunc('hour', recorded_at), machine_id, mount_point, avg(used_percent), max(used_percent), count(*)
	 FROM disk_info WHERE recorded_at >= $1 AND recorded_at < $2
	 GROUP BY 1, 2, 3
	 ON CONFLICT (machine_id, mount_point, bucket) DO UPDATE SET
	        disk_usage_avg = EXCLUDED.disk_usage_avg, disk_usage_max = EXCLUDED.disk_usage_max,
	        sample_count = EXCLUDED.sample_count`,
		`INSERT INTO network_hourly (bucket, machine_id, bytes_recv_avg, bytes_recv_max, bytes_sent_avg, bytes_sent_max,
	        packet_loss_avg, packet_loss_max, latency_avg, latency_max, sample_count)
	 SELECT date_trunc('hour', recorded_at), machine_id,
	        avg(bytes_recv), max(bytes_recv), avg(bytes_sent), max(bytes_sent),
	        avg(packet_loss), max(packet_loss), avg(latency_ms), max(latency_ms), count(*)
	 FROM metrics WHERE recorded_at >= $1 AND recorded_at < $2
	 GROUP BY 1, 2
	 ON CONFLICT (machine_id, bucket) DO UPDATE SET
	        bytes_recv_avg = EXCLUDED.bytes_recv_avg, bytes_recv_max = EXCLUDED.bytes_recv_max,
	        bytes_sent_avg = EXCLUDED.bytes_sent_avg, bytes_sent_max = EXCLUDED.bytes_sent_max,
	        packet_loss_avg = EXCLUDED.packet_loss_avg, packet_loss_max = EXCLUDED.packet_loss_max,
	        latency_avg = EXCLUDED.latency_avg, latency_max = EXCLUDED.latency_max,
	        sample_count = EXCLUDED.sample_count`,
	}
}
