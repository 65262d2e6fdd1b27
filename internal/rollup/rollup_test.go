package rollup_test

import (
	"context"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPostgresModeRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	m := testenv.Machine(t, pool, testenv.Client(t, pool, "Pro"), "web-01")
	hour := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	// Three samples in 08:00-09:00, one at 09:10 (outside the refreshed window end).
	_, err := pool.Exec(ctx, `
		INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, cpu_temp, bytes_recv, bytes_sent, packet_loss, latency_ms)
		SELECT $1, t, c, r, 50, b, b * 2, 0.5, l
		FROM (VALUES ($2::timestamptz, 10.0, 40.0, 100, 10.0), ($2 + INTERVAL '20 min', 20.0, 50.0, 200, 20.0),
		             ($2 + INTERVAL '40 min', 60.0, 60.0, 600, 30.0), ($2 + INTERVAL '70 min', 99.0, 99.0, 999, 99.0))
		     AS v(t, c, r, b, l)`, m, hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent) VALUES
		($1, $2, '/', 40), ($1, $2 + INTERVAL '30 min', '/', 50)`, m, hour)
	if err != nil {
		t.Fatal(err)
	}
	r := rollup.Refresher{Pool: pool, Mode: migrate.ModePostgres}
	for range 2 { // re-running gives the same rows
		if err := r.Refresh(ctx, hour, hour.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	var cpuAvg, cpuMin, cpuMax, ramMax float64
	var n int64
	if err := pool.QueryRow(ctx, `SELECT cpu_avg, cpu_min, cpu_max, ram_max, sample_count FROM metrics_hourly WHERE machine_id = $1 AND bucket = $2`, m, hour).
		Scan(&cpuAvg, &cpuMin, &cpuMax, &ramMax, &n); err != nil {
		t.Fatal(err)
	}
	if cpuAvg != 30 || cpuMin != 10 || cpuMax != 60 || ramMax != 60 || n != 3 {
		t.Fatalf("metrics_hourly = avg %v min %v max %v ram_max %v n %d", cpuAvg, cpuMin, cpuMax, ramMax, n)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM metrics_hourly`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%d rows in metrics_hourly, want 1 (09:00 is outside the window)", rows)
	}
	var recvAvg, latMax float64
	if err := pool.QueryRow(ctx, `SELECT bytes_recv_avg, latency_max FROM network_hourly WHERE machine_id = $1`, m).Scan(&recvAvg, &latMax); err != nil {
		t.Fatal(err)
	}
	if recvAvg != 300 || latMax != 30 {
		t.Fatalf("network_hourly = %v %v", recvAvg, latMax)
	}
	var diskAvg, diskMax float64
	if err := pool.QueryRow(ctx, `SELECT disk_usage_avg, disk_usage_max FROM disk_hourly WHERE machine_id = $1`, m).Scan(&diskAvg, &diskMax); err != nil {
		t.Fatal(err)
	}
	if diskAvg != 45 || diskMax != 50 {
		t.Fatalf("disk_hourly = %v %v", diskAvg, diskMax)
	}
	// The hourly job picks up the following hour.
	if err := r.Job(ctx, hour.Add(2*time.Hour+5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM metrics_hourly`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Fatalf("after the job: %d rows, want 2", rows)
	}
}
