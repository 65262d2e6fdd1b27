package series_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/series"
	"github.com/optralis/optralis/internal/testenv"
)

// modeEnv is a migrated database in one time-series mode.
type modeEnv struct {
	Pool *pgxpool.Pool
	Mode string
	Now  time.Time
}

func (e modeEnv) refresh(t *testing.T, from, to time.Time) {
	t.Helper()
	if err := (rollup.Refresher{Pool: e.Pool, Mode: e.Mode}).Refresh(context.Background(), from, to); err != nil {
		t.Fatal(err)
	}
}

func (e modeEnv) machine(t *testing.T, tier string) (clientID, machineID string) {
	t.Helper()
	clientID = testenv.Client(t, e.Pool, tier)
	return clientID, testenv.Machine(t, e.Pool, clientID, "host-"+clientID[:8])
}

func ptr[T any](v T) *T { return &v }

// sample is a deterministic reading: CPU and RAM vary with the minute, network with the hour.
func sample(machineID string, at time.Time) series.Metric {
	m := float64(at.Minute())
	return series.Metric{
		MachineID: machineID, RecordedAt: at,
		CPUPercent: m, RAMPercent: 50 + m/2, CPUTemp: ptr(40 + m/10),
		BytesRecv: ptr(int64(1000 * (at.Hour() + 1))), BytesSent: ptr(int64(500 * (at.Hour() + 1))),
		PacketLoss: ptr(m / 60), LatencyMS: ptr(10 + m),
	}
}

// minutely returns samples every `step` from start (inclusive) to end (exclusive).
func minutely(machineID string, start, end time.Time, step time.Duration) []series.Metric {
	var out []series.Metric
	for at := start; at.Before(end); at = at.Add(step) {
		out = append(out, sample(machineID, at))
	}
	return out
}

func insert(t *testing.T, e modeEnv, rows []series.Metric) int64 {
	t.Helper()
	// Batches of at most 1000 rows keep each statement's parameters modest on every server.
	var n int64
	for len(rows) > 0 {
		k := min(len(rows), 1000)
		got, err := series.InsertMetrics(context.Background(), e.Pool, rows[:k])
		if err != nil {
			t.Fatal(err)
		}
		n += got
		rows = rows[k:]
	}
	return n
}

func count(t *testing.T, e modeEnv, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// sharedCases run unchanged in both modes: the application must see the same results.
var sharedCases = []struct {
	name string
	run  func(t *testing.T, e modeEnv)
}{
	{"idempotent heartbeat insert", func(t *testing.T, e modeEnv) {
		_, m := e.machine(t, "Pro")
		rows := minutely(m, e.Now.Add(-10*time.Minute), e.Now, time.Minute)
		if n := insert(t, e, rows); n != 10 {
			t.Fatalf("first insert: %d new rows", n)
		}
		if n := insert(t, e, rows[3:7]); n != 0 {
			t.Fatalf("retried insert wrote %d rows", n)
		}
		if n := count(t, e, `SELECT count(*) FROM metrics WHERE machine_id = $1`, m); n != 10 {
			t.Fatalf("%d rows stored", n)
		}
	}},
	{"history from aggregates", func(t *testing.T, e modeEnv) {
		_, m := e.machine(t, "Pro")
		end := e.Now.Truncate(time.Hour)
		start := end.Add(-6 * time.Hour)
		insert(t, e, minutely(m, start, end, 20*time.Minute)) // minutes 0, 20, 40 of each hour
		e.refresh(t, start, end)
		pts, src, err := series.CPURAMHistory(context.Background(), e.Pool, m, e.Now.Add(-24*time.Hour), e.Now)
		if err != nil {
			t.Fatal(err)
		}
		if src != series.FromAggregates || len(pts) != 6 {
			t.Fatalf("source %s, %d points", src, len(pts))
		}
		for i, p := range pts {
			if !p.Bucket.Equal(start.Add(time.Duration(i)*time.Hour)) || p.CPUAvg != 20 || p.CPUMin != 0 || p.CPUMax != 40 ||
				p.RAMAvg != 60 || p.RAMMax != 70 || p.CPUTempAvg == nil || *p.CPUTempAvg != 42 {
				t.Fatalf("point %d = %+v", i, p)
			}
		}
		net, src, err := series.NetworkHistory(context.Background(), e.Pool, m, e.Now.Add(-24*time.Hour), e.Now)
		if err != nil || src != series.FromAggregates || len(net) != 6 {
			t.Fatalf("network: %v %s %d", err, src, len(net))
		}
		h := start.Hour()
		if *net[0].BytesRecvMax != int64(1000*(h+1)) || *net[0].LatencyMax != 50 || *net[0].LatencyAvg != 30 {
			t.Fatalf("network point = %+v", net[0])
		}
	}},
	{"raw fallback below 5 aggregated points", func(t *testing.T, e modeEnv) {
		_, m := e.machine(t, "Pro")
		end := e.Now.Truncate(time.Hour)
		start := end.Add(-3 * time.Hour)
		insert(t, e, minutely(m, start, end, 15*time.Minute))
		e.refresh(t, start, end) // 3 aggregated hours < 5: the raw rows answer
		pts, src, err := series.CPURAMHistory(context.Background(), e.Pool, m, e.Now.Add(-24*time.Hour), e.Now)
		if err != nil {
			t.Fatal(err)
		}
		if src != series.FromRaw || len(pts) != 3 {
			t.Fatalf("source %s, %d points", src, len(pts))
		}
		for _, p := range pts { // last reading of each hour: minute 45
			if p.CPUAvg != 45 || p.CPUMin != 45 || p.CPUMax != 45 {
				t.Fatalf("raw point = %+v", p)
			}
		}
		net, src, err := series.NetworkHistory(context.Background(), e.Pool, m, e.Now.Add(-24*time.Hour), e.Now)
		if err != nil || src != series.FromRaw || len(net) != 3 || *net[0].LatencyMax != 55 {
			t.Fatalf("network fallback: %v %s %+v", err, src, net)
		}
	}},
	{"explicit windows: the hours starting inside [from, to)", func(t *testing.T, e modeEnv) {
		_, m := e.machine(t, "Pro")
		end := e.Now.Truncate(time.Hour)
		start := end.Add(-8 * time.Hour)
		insert(t, e, minutely(m, start, end, 20*time.Minute))
		e.refresh(t, start, end)
		ctx := context.Background()
		for _, c := range []struct {
			from, to time.Time
			n        int
			src      string
		}{
			{start, end, 8, series.FromAggregates},
			{start.Add(time.Minute), end, 7, series.FromAggregates}, // the hour of from started before it
			{start, start.Add(5 * time.Hour), 5, series.FromAggregates},
			{start.Add(2 * time.Hour), start.Add(6*time.Hour + 30*time.Minute), 5, series.FromAggregates},
			{start.Add(30 * time.Minute), start.Add(4 * time.Hour), 3, series.FromRaw}, // 3 hours < 5: raw, same hours
		} {
			pts, src, err := series.CPURAMHistory(ctx, e.Pool, m, c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			if src != c.src || len(pts) != c.n || !pts[0].Bucket.Equal(c.from.Add(59*time.Minute).Truncate(time.Hour)) {
				t.Errorf("[%s, %s): source %s, points %+v; want %s, %d from the first whole hour", c.from, c.to, src, pts, c.src, c.n)
			}
		}
	}},
	{"disk history per mount point, aggregated then raw", func(t *testing.T, e modeEnv) {
		_, m := e.machine(t, "Pro")
		end := e.Now.Truncate(time.Hour)
		start := end.Add(-6 * time.Hour)
		var ids, mounts []string
		var at []time.Time
		var used []float64
		for ts := start; ts.Before(end); ts = ts.Add(20 * time.Minute) { // minutes 0, 20, 40
			for i, mount := range []string{"/", "/data"} {
				ids, at, mounts = append(ids, m), append(at, ts), append(mounts, mount)
				used = append(used, float64(ts.Minute())/2+float64(50*i))
			}
		}
		if _, err := e.Pool.Exec(context.Background(), `INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent)
			SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::numeric[])`, ids, at, mounts, used); err != nil {
			t.Fatal(err)
		}
		e.refresh(t, start, end)
		pts, src, err := series.DiskHistory(context.Background(), e.Pool, m, start, end)
		if err != nil {
			t.Fatal(err)
		}
		if src != series.FromAggregates || len(pts) != 12 {
			t.Fatalf("source %s, %d points", src, len(pts))
		}
		for i, p := range pts {
			wantMount, base := "/", 0.0
			if i%2 == 1 {
				wantMount, base = "/data", 50
			}
			if !p.Bucket.Equal(start.Add(time.Duration(i/2)*time.Hour)) || p.MountPoint != wantMount ||
				*p.UsageAvg != base+10 || *p.UsageMax != base+20 {
				t.Fatalf("point %d = %+v", i, p)
			}
		}
		// Four hours hold 8 aggregated rows but only 4 hours: the raw rows answer.
		pts, src, err = series.DiskHistory(context.Background(), e.Pool, m, start, start.Add(4*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if src != series.FromRaw || len(pts) != 8 || *pts[0].UsageAvg != 20 || *pts[1].UsageMax != 70 || pts[1].MountPoint != "/data" {
			t.Fatalf("raw fallback: source %s, %+v", src, pts)
		}
	}},
	{"per-client licence delete", func(t *testing.T, e modeEnv) {
		trial, a := e.machine(t, "Trial")
		_, b := e.machine(t, "Enterprise")
		start := e.Now.Truncate(time.Hour).Add(-10 * 24 * time.Hour)
		for _, m := range []string{a, b} {
			insert(t, e, minutely(m, start, e.Now, time.Hour))
		}
		e.refresh(t, start, e.Now)
		cutoff := e.Now.Add(-7 * 24 * time.Hour)
		if e.Mode == "timescale" {
			// Delete on compressed chunks: run the compression policy first (chunks older
			// than 2 days, so every row the cleanup removes is compressed).
			job := count(t, e, `SELECT job_id FROM timescaledb_information.jobs
				WHERE proc_name = 'policy_compression' AND hypertable_name = 'metrics'`)
			if _, err := e.Pool.Exec(context.Background(), `CALL run_job($1::int)`, job); err != nil {
				t.Fatal(err)
			}
			if n := count(t, e, `SELECT count(*) FROM timescaledb_information.chunks
				WHERE hypertable_name = 'metrics' AND is_compressed AND range_end <= $1`, cutoff); n < 3 {
				t.Fatalf("only %d compressed chunks hold rows past the cutoff", n)
			}
		}
		before := count(t, e, `SELECT count(*) FROM metrics WHERE machine_id = $1`, a)
		old := count(t, e, `SELECT count(*) FROM metrics WHERE machine_id = $1 AND recorded_at < $2`, a, cutoff)
		del, err := series.DeleteClientData(context.Background(), e.Pool, e.Mode, trial, cutoff, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		if del["metrics"] != old || old == 0 {
			t.Fatalf("deleted %d metrics, %d were older than the cutoff", del["metrics"], old)
		}
		if n := count(t, e, `SELECT count(*) FROM metrics WHERE machine_id = $1`, a); n != before-old {
			t.Fatalf("%d rows left for the trial client, want %d", n, before-old)
		}
		if n := count(t, e, `SELECT count(*) FROM metrics WHERE machine_id = $1 AND recorded_at < $2`, b, cutoff); n == 0 {
			t.Fatal("the other client's old rows were deleted")
		}
		// Aggregates follow: re-materialise the range, then no bucket of A before the cutoff.
		e.refresh(t, start, e.Now)
		if n := count(t, e, `SELECT count(*) FROM metrics_hourly WHERE machine_id = $1 AND bucket < $2`, a, cutoff.Truncate(time.Hour)); n != 0 {
			t.Fatalf("%d aggregated hours of the trial client survive the cutoff", n)
		}
		if n := count(t, e, `SELECT count(*) FROM metrics_hourly WHERE machine_id = $1 AND bucket < $2`, b, cutoff); n == 0 {
			t.Fatal("the other client's aggregates were deleted")
		}
	}},
	{"deleted machine purge", func(t *testing.T, e modeEnv) {
		client, gone := e.machine(t, "Pro")
		kept := testenv.Machine(t, e.Pool, client, "kept-"+client[:8])
		start := e.Now.Truncate(time.Hour).Add(-5 * 24 * time.Hour)
		for _, m := range []string{gone, kept} {
			insert(t, e, minutely(m, start, e.Now, time.Hour))
			for _, sql := range []string{
				`INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent) VALUES ($1, $2, '/', 10)`,
				`INSERT INTO event_logs (machine_id, recorded_at, seq, event_time) VALUES ($1, $2, 0, $2)`,
				`INSERT INTO smart_data (machine_id, recorded_at, device) VALUES ($1, $2, 'sda')`,
			} {
				if _, err := e.Pool.Exec(context.Background(), sql, m, start); err != nil {
					t.Fatal(err)
				}
			}
		}
		e.refresh(t, start, e.Now)
		if e.Mode == "timescale" {
			job := count(t, e, `SELECT job_id FROM timescaledb_information.jobs
				WHERE proc_name = 'policy_compression' AND hypertable_name = 'metrics'`)
			if _, err := e.Pool.Exec(context.Background(), `CALL run_job($1::int)`, job); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.Pool.Exec(context.Background(), `UPDATE machines SET deleted_at = $2 WHERE id = $1`, gone, e.Now); err != nil {
			t.Fatal(err)
		}
		keptBefore := count(t, e, `SELECT count(*) FROM metrics WHERE machine_id = $1`, kept)
		n, del, err := series.PurgeDeletedMachines(context.Background(), e.Pool, e.Mode, 10)
		if err != nil || n != 1 || del["metrics"] == 0 || del["disk_info"] != 1 || del["event_logs"] != 1 || del["smart_data"] != 1 {
			t.Fatalf("purge: %d machines, %v, %v", n, del, err)
		}
		for _, table := range []string{"metrics", "disk_info", "event_logs", "smart_data"} {
			if left := count(t, e, `SELECT count(*) FROM `+table+` WHERE machine_id = $1`, gone); left != 0 {
				t.Fatalf("%d rows of the deleted machine left in %s", left, table)
			}
		}
		if count(t, e, `SELECT count(*) FROM machines WHERE id = $1`, gone) != 0 {
			t.Fatal("the machine row survived the purge")
		}
		if count(t, e, `SELECT count(*) FROM metrics WHERE machine_id = $1`, kept) != keptBefore ||
			count(t, e, `SELECT count(*) FROM disk_info WHERE machine_id = $1`, kept) != 1 {
			t.Fatal("the purge touched a live machine's rows")
		}
		// Aggregates: gone at once from the rollup tables; from the continuous aggregates
		// once the range is re-materialised (the refresh policy's job).
		e.refresh(t, start, e.Now)
		if n := count(t, e, `SELECT count(*) FROM metrics_hourly WHERE machine_id = $1`, gone); n != 0 {
			t.Fatalf("%d aggregated hours of the deleted machine left", n)
		}
		if count(t, e, `SELECT count(*) FROM metrics_hourly WHERE machine_id = $1`, kept) == 0 {
			t.Fatal("the live machine's aggregates were deleted")
		}
		if n, _, err := series.PurgeDeletedMachines(context.Background(), e.Pool, e.Mode, 10); err != nil || n != 0 {
			t.Fatalf("second purge: %d, %v", n, err)
		}
	}},
}

func runShared(t *testing.T, newEnv func(t *testing.T) modeEnv) {
	for _, c := range sharedCases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newEnv(t)) })
	}
}

func TestSharedCasesPostgresMode(t *testing.T) {
	runShared(t, func(t *testing.T) modeEnv {
		return modeEnv{Pool: testenv.NewDB(t, "postgres"), Mode: "postgres", Now: fixedNow()}
	})
}

// fixedNow is the real current minute: TimescaleDB policies measure ages from the real clock.
func fixedNow() time.Time { return time.Now().UTC().Truncate(time.Minute) }

// TestSharedCasesTimescaleMode runs the same cases on one TimescaleDB database (a sidecar
// takes seconds to start): each case works on machines of its own, so they cannot interfere.
func TestSharedCasesTimescaleMode(t *testing.T) {
	env := modeEnv{Pool: testenv.Timescale(t), Mode: "timescale", Now: fixedNow()}
	runShared(t, func(*testing.T) modeEnv { return env })
}
