package migrate_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

// timeseriesTables are the spec's hypertables and their time columns.
var timeseriesTables = map[string]string{
	"metrics": "recorded_at", "disk_info": "recorded_at", "event_logs": "recorded_at",
	"smart_data": "recorded_at", "activity_logs": "created_at", "service_uptime": "checked_at",
}

// TestTimescaleMode proves the timescale mode against TimescaleDB's own catalog, and runs
// the policies' jobs to show what they do. One database for the whole test: the sidecar
// takes seconds to start, and the steps below build on each other.
func TestTimescaleMode(t *testing.T) {
	pool := testenv.Timescale(t)
	ctx := context.Background()
	t.Logf("running against %s", testenv.TimescaleServer())

	t.Run("schema matches the spec", func(t *testing.T) { checkSchema(t, pool) })

	t.Run("re-running migrations is a no-op", func(t *testing.T) {
		res, err := migrate.Run(ctx, pool, migrate.ModeAuto, testenv.Discard())
		if err != nil || len(res.Applied) != 0 || res.Mode != migrate.ModeTimescale {
			t.Fatalf("%+v %v", res, err)
		}
		if _, err := migrate.Run(ctx, pool, migrate.ModePostgres, testenv.Discard()); !errors.Is(err, migrate.ErrModeConflict) {
			t.Fatalf("postgres mode on a timescale database: %v", err)
		}
	})

	t.Run("policies unscheduled for the test", func(t *testing.T) {
		// testenv.Timescale unschedules them so that a server with background workers
		// does not run them behind the test's back; the test runs them with run_job.
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.jobs WHERE job_id >= 1000 AND scheduled`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d policies still scheduled (%v)", n, err)
		}
	})

	t.Run("no foreign keys from hypertables", func(t *testing.T) {
		// drop_chunks locks every table a hypertable (or its chunks) references: retention
		// would block machines, clients and users (migration 00010).
		rows, err := pool.Query(ctx, `
			SELECT c.conname || ' on ' || c.conrelid::regclass::text || ' -> ' || c.confrelid::regclass::text
			FROM pg_constraint c
			WHERE c.contype = 'f' AND c.conrelid IN (
			    SELECT format('%I.%I', hypertable_schema, hypertable_name)::regclass FROM timescaledb_information.hypertables
			    UNION ALL
			    SELECT format('%I.%I', chunk_schema, chunk_name)::regclass FROM timescaledb_information.chunks)`)
		if err != nil {
			t.Fatal(err)
		}
		fks, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(fks) > 0 {
			t.Errorf("foreign keys from hypertables: %v", fks)
		}
	})

	t.Run("hypertables with 1-day chunks", func(t *testing.T) {
		got := map[string]string{}
		rows, err := pool.Query(ctx, `SELECT hypertable_name, column_name, time_interval::text
			FROM timescaledb_information.dimensions WHERE hypertable_schema = 'public'`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var table, col, interval string
			if err := rows.Scan(&table, &col, &interval); err != nil {
				t.Fatal(err)
			}
			got[table] = col + " " + interval
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for table, col := range timeseriesTables {
			if got[table] != col+" 1 day" {
				t.Errorf("%s: dimension %q, want %q", table, got[table], col+" 1 day")
			}
		}
	})

	t.Run("compression settings and policies", func(t *testing.T) {
		segment := map[string]string{}
		rows, err := pool.Query(ctx, `SELECT hypertable_name, attname FROM timescaledb_information.compression_settings
			WHERE segmentby_column_index IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var table, col string
			if err := rows.Scan(&table, &col); err != nil {
				t.Fatal(err)
			}
			segment[table] = col
		}
		want := map[string]string{"metrics": "machine_id", "disk_info": "machine_id", "event_logs": "machine_id",
			"smart_data": "machine_id", "activity_logs": "client_id", "service_uptime": "service_name"}
		for table, col := range want {
			if segment[table] != col {
				t.Errorf("%s compression segmented by %q, want %q", table, segment[table], col)
			}
		}
		for table := range timeseriesTables {
			if got := policy(t, pool, "policy_compression", table, "compress_after"); got != "2 days" {
				t.Errorf("%s compress_after = %q, want 2 days", table, got)
			}
		}
	})

	t.Run("retention safety nets", func(t *testing.T) {
		want := map[string]string{"metrics": "365 days", "disk_info": "365 days", "event_logs": "365 days",
			"smart_data": "365 days", "activity_logs": "30 days", "service_uptime": "30 days",
			"metrics_hourly": "365 days", "disk_hourly": "365 days", "network_hourly": "365 days"}
		for table, interval := range want {
			if got := policy(t, pool, "policy_retention", table, "drop_after"); got != interval {
				t.Errorf("%s drop_after = %q, want %s", table, got, interval)
			}
		}
	})

	t.Run("continuous aggregates and their policy", func(t *testing.T) {
		for _, view := range []string{"metrics_hourly", "disk_hourly", "network_hourly"} {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.continuous_aggregates WHERE view_name = $1`, view).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%s is not a continuous aggregate (%d, %v)", view, n, err)
			}
			var start, end, every string
			// For continuous aggregates, jobs name the view in hypertable_name.
			err := pool.QueryRow(ctx, `SELECT config->>'start_offset', config->>'end_offset', schedule_interval::text
				FROM timescaledb_information.jobs
				WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = $1`, view).Scan(&start, &end, &every)
			if err != nil {
				t.Fatalf("%s refresh policy: %v", view, err)
			}
			if start != "31 days" || end != "01:00:00" || every != "01:00:00" {
				t.Errorf("%s policy start %q end %q every %q, want 31 days / 1 hour / 1 hour", view, start, end, every)
			}
		}
	})

	// Data for the policy runs: one machine, one metrics row every 6 hours for 6 days, a
	// metrics row 370 and 360 days old, uptime checks 40 and 20 days old.
	now := time.Now().UTC()
	var clientID, machineID string
	if err := pool.QueryRow(ctx, `INSERT INTO clients (name) VALUES ('ts') RETURNING id`).Scan(&clientID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO machines (client_id, hostname) VALUES ($1, 'ts-01') RETURNING id`, clientID).Scan(&machineID); err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	for at := now.Add(-6 * 24 * time.Hour); at.Before(now); at = at.Add(6 * time.Hour) {
		times = append(times, at)
	}
	times = append(times, now.AddDate(0, 0, -370), now.AddDate(0, 0, -360))
	if _, err := pool.Exec(ctx, `INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent)
		SELECT $1, t, 50, 50 FROM unnest($2::timestamptz[]) AS t`, machineID, times); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO service_uptime (service_name, status, checked_at) VALUES
		('api', 'online', $1), ('api', 'online', $2)`, now.AddDate(0, 0, -40), now.AddDate(0, 0, -20)); err != nil {
		t.Fatal(err)
	}

	t.Run("compression policy compresses exactly the chunks older than 2 days", func(t *testing.T) {
		runJob(t, pool, "policy_compression", "metrics")
		chunks := chunkStates(t, pool, "metrics")
		if len(chunks) < 8 {
			t.Fatalf("only %d chunks", len(chunks))
		}
		limit := now.Add(-48 * time.Hour)
		for _, c := range chunks {
			if old := !c.end.After(limit); old != c.compressed {
				t.Errorf("chunk ending %v: compressed=%v, want %v", c.end, c.compressed, old)
			}
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM metrics`).Scan(&n); err != nil || n != len(times) {
			t.Fatalf("rows after compression: %d (%v), want %d", n, err, len(times))
		}
		var before, after int64
		if err := pool.QueryRow(ctx, `SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes)
			FROM hypertable_compression_stats('metrics')`).Scan(&before, &after); err != nil || before == 0 {
			t.Fatalf("compression stats: %d %d %v", before, after, err)
		}
	})

	t.Run("retention policies drop exactly the chunks past the limit", func(t *testing.T) {
		runJob(t, pool, "policy_retention", "metrics")
		runJob(t, pool, "policy_retention", "service_uptime")
		for _, c := range chunkStates(t, pool, "metrics") {
			if !c.end.After(now.AddDate(0, 0, -365)) {
				t.Errorf("metrics chunk ending %v survived the 365-day policy", c.end)
			}
		}
		var oldest time.Time
		if err := pool.QueryRow(ctx, `SELECT min(recorded_at) FROM metrics`).Scan(&oldest); err != nil {
			t.Fatal(err)
		}
		if !oldest.Equal(now.AddDate(0, 0, -360).Truncate(time.Microsecond)) {
			t.Errorf("oldest metrics row %v, want the 360-day-old one", oldest)
		}
		var checks []time.Time
		rows, _ := pool.Query(ctx, `SELECT checked_at FROM service_uptime ORDER BY checked_at`)
		checks, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			t.Fatal(err)
		}
		if len(checks) != 1 || !checks[0].Equal(now.AddDate(0, 0, -20).Truncate(time.Microsecond)) {
			t.Errorf("service_uptime after the 30-day policy: %v", checks)
		}
	})

	t.Run("refresh materialises hourly avg, min and max", func(t *testing.T) {
		hour := now.Truncate(time.Hour).Add(-3 * time.Hour)
		_, err := pool.Exec(ctx, `INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, cpu_temp, bytes_recv, latency_ms)
			VALUES ($1, $2, 10, 20, 40, 100, 5), ($1, $2 + INTERVAL '10 min', 30, 40, 50, 300, 15), ($1, $2 + INTERVAL '50 min', 80, 60, 60, 800, 40)
			ON CONFLICT DO NOTHING`, machineID, hour.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		runJob(t, pool, "policy_refresh_continuous_aggregate", "metrics_hourly")
		runJob(t, pool, "policy_refresh_continuous_aggregate", "network_hourly")
		var avg, lo, hi, ramAvg, tempMax, recvAvg, latMax float64
		if err := pool.QueryRow(ctx, `SELECT m.cpu_avg, m.cpu_min, m.cpu_max, m.ram_avg, m.cpu_temp_max, n.bytes_recv_avg, n.latency_max
			FROM metrics_hourly m JOIN network_hourly n USING (machine_id, bucket) WHERE m.machine_id = $1 AND m.bucket = $2`, machineID, hour).
			Scan(&avg, &lo, &hi, &ramAvg, &tempMax, &recvAvg, &latMax); err != nil {
			t.Fatal(err)
		}
		if avg != 40 || lo != 10 || hi != 80 || ramAvg != 40 || tempMax != 60 || recvAvg != 400 || latMax != 40 {
			t.Fatalf("hour %v: cpu %v/%v/%v ram %v temp %v recv %v lat %v", hour, avg, lo, hi, ramAvg, tempMax, recvAvg, latMax)
		}
	})
}

func policy(t *testing.T, pool *pgxpool.Pool, proc, table, key string) string {
	t.Helper()
	var v string
	err := pool.QueryRow(context.Background(), `
		SELECT config->>$3 FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = $2`, proc, table, key).Scan(&v)
	if err != nil {
		t.Errorf("%s policy on %s: %v", proc, table, err)
	}
	return v
}

// runJob runs a policy in the foreground, as the scheduler would (the test server has no
// background workers).
func runJob(t *testing.T, pool *pgxpool.Pool, proc, hypertable string) {
	t.Helper()
	var id int
	if err := pool.QueryRow(context.Background(), `SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = $2`, proc, hypertable).Scan(&id); err != nil {
		t.Fatalf("%s job on %s: %v", proc, hypertable, err)
	}
	// Should a scheduled run still hold the job (a server with workers), its 55P03 is retried.
	err := db.RetryLockNotAvailable(context.Background(), db.RefreshBackoff(), func(ctx context.Context) error {
		_, err := pool.Exec(ctx, `CALL run_job($1)`, id)
		return err
	})
	if err != nil {
		t.Fatalf("run_job(%d) %s on %s: %v", id, proc, hypertable, err)
	}
}

type chunk struct {
	end        time.Time
	compressed bool
}

func chunkStates(t *testing.T, pool *pgxpool.Pool, table string) []chunk {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT range_end, is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = $1`, table)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chunk, error) {
		var c chunk
		return c, r.Scan(&c.end, &c.compressed)
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].end.Before(out[j].end) })
	return out
}
